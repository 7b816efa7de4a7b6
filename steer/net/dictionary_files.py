"""Dictionary files: a fitted sparse autoencoder as safetensors, with what it was fitted on in the metadata.

A dictionary is only meaningful at the site and for the checkpoint its corpus came from, so the file records both
(and the corpus seeds, the sparsity, the fit settings, the library and versions) and `load_dictionary` refuses it
anywhere else, as vector files are refused against another checkpoint. The bytes are written by `dictionary_bytes`
alone (safetensors' `save`, metadata all strings), the one place to switch to the shared tensor-file module
(issue 32's `steer.net.tensor_files`) once it lands.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from steer.errors import SteerError, excerpt
from steer.net.sae import FitSettings, TopKSAE
from steer.version import __version__

FORMAT = "steer-dictionary/1"
LIBRARY = "steer.net.sae (TopK SAE in torch)"
TENSORS = ("W_enc", "b_enc", "W_dec", "b_dec", "threshold")  # threshold: 0-d, NaN unless fitted BatchTopK


@dataclass(frozen=True)
class DictionaryMeta:
    """What a dictionary was fitted on and how; every field goes into the file's metadata."""

    site: str  # the hook name, as the policy displays it
    checkpoint: str
    checkpoint_sha256: str
    corpus_seeds: tuple[int, ...]
    rows: int  # corpus rows (positions) the fit saw
    settings: FitSettings
    inputs: str  # a digest of everything the fit read: resume reuses the file only when it matches

    def to_strings(self) -> dict[str, str]:
        return {
            "format": FORMAT,
            "site": self.site,
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256,
            "corpus_seeds": json.dumps(list(self.corpus_seeds)),
            "rows": str(self.rows),
            "k": str(self.settings.k),
            "sparsity": "batchtopk" if self.settings.batch_topk else "topk",
            "expansion": str(self.settings.expansion),
            "fit": json.dumps(self.settings.to_json(), sort_keys=True),
            "inputs": self.inputs,
            "library": LIBRARY,
            "library_version": f"torch {torch.__version__.split('+')[0]}",
            "steer_version": __version__,
        }


def dictionary_bytes(sae: TopKSAE, meta: Mapping[str, str]) -> bytes:
    """The safetensors bytes of a dictionary and its metadata (`DictionaryMeta.to_strings()`, or a file's own),
    the same bytes every time."""
    tensors = {name: getattr(sae, name).detach().contiguous().cpu() for name in TENSORS}
    return canonical_header(save(tensors, metadata=dict(meta)))


def canonical_header(data: bytes) -> bytes:
    """safetensors bytes with the JSON header's keys sorted: safetensors 0.8 writes the header from hash maps, so
    the same tensors and metadata come out in another key order from one call to the next, and a resumed run, or
    the same run on Ray, would write other bytes. The header keeps its length (the same compact JSON, padded with
    spaces as safetensors pads it), so the tensors' offsets stand."""
    n = int.from_bytes(data[:8], "little")
    text = json.dumps(json.loads(data[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    if len(text) > n:  # cannot happen for the compact JSON safetensors writes; never risk a corrupt file
        return data
    return data[:8] + text.ljust(n, b" ") + data[8 + n :]


@dataclass(frozen=True)
class Dictionary:
    """A dictionary read back: the module and the metadata strings it was saved with."""

    sae: TopKSAE
    meta: dict[str, str]

    @property
    def k(self) -> int:
        return self.sae.k


def read_dictionary(path: Path, where: str = "dictionary") -> Dictionary:
    """A dictionary file, checked for its format and tensors (not yet for the run it is used in)."""
    if not path.is_file():
        raise SteerError(
            f"{where}: {excerpt(str(path), 160)} is not a file. Give a dictionary.safetensors file a `steer features` "
            "run wrote."
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open is no mapping)
    except (SafetensorError, OSError, ValueError) as e:
        raise SteerError(
            f"{where}: {excerpt(str(path), 160)} is not a safetensors file ({excerpt(str(e), 120)}). Give a "
            "dictionary.safetensors file a `steer features` run wrote."
        ) from None
    missing = [n for n in TENSORS if n not in tensors]
    if meta.get("format") != FORMAT or missing:
        raise SteerError(
            f"{where}: {excerpt(str(path), 160)} is not a steer dictionary (format {excerpt(meta.get('format'), 40)}, "
            f"missing tensors {missing or 'none'}). Give a dictionary.safetensors file a `steer features` run wrote."
        )
    w_enc = tensors["W_enc"]
    d_in, d_sae = w_enc.shape
    shapes_ok = (
        tensors["b_enc"].shape == (d_sae,)
        and tensors["W_dec"].shape == (d_sae, d_in)
        and tensors["b_dec"].shape == (d_in,)
        and tensors["threshold"].shape == ()
    )
    k = _int(meta.get("k"))
    if not shapes_ok or k is None or not 1 <= k <= d_sae:
        raise SteerError(
            f"{where}: {excerpt(str(path), 160)} has inconsistent tensors or k ({excerpt(meta.get('k'), 20)}"
            "); the file is damaged. Fit the dictionary again with `steer features`."
        )
    if not all(torch.isfinite(tensors[n]).all() for n in TENSORS[:4]) or tensors["threshold"].isinf():
        raise SteerError(f"{where}: {excerpt(str(path), 160)} holds NaN or inf weights; fit the dictionary again.")
    sae = TopKSAE(d_in, d_sae, k)
    with torch.no_grad():
        for name in TENSORS:
            getattr(sae, name).copy_(tensors[name].float())
    sae.eval()
    sae.requires_grad_(False)
    return Dictionary(sae, meta)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def check_dictionary(
    d: Dictionary, path: Path, site: str, checkpoint_sha256: str, channels: int, where: str = "dictionary"
) -> None:
    """Refuse a dictionary fitted at another site, with another checkpoint, or for another channel count."""
    meta: dict[str, Any] = d.meta
    if meta.get("checkpoint_sha256") != checkpoint_sha256:
        raise SteerError(
            f"{where}: {excerpt(str(path), 160)} was fitted with checkpoint {excerpt(meta.get('checkpoint'), 60)} "
            f"(sha256 {str(meta.get('checkpoint_sha256'))[:12]}…), not this run's (sha256 {checkpoint_sha256[:12]}…): "
            "its features are directions of another network. Fit a dictionary with this checkpoint (`steer features`)."
        )
    if meta.get("site") != site:
        raise SteerError(
            f"{where}: {excerpt(str(path), 160)} was fitted at {excerpt(meta.get('site'), 60)}, not at {site!r}. Set "
            f"`site: {meta.get('site')}` or fit a dictionary at {site}."
        )
    if d.sae.d_in != channels:
        raise SteerError(
            f"{where}: {excerpt(str(path), 160)} reads {d.sae.d_in} channels, but {site} has {channels} for this "
            "checkpoint. Fit a dictionary with this checkpoint."
        )
