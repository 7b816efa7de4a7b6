"""Dictionary files: a fitted sparse autoencoder as safetensors, with what it was fitted on in the metadata.

A dictionary is only meaningful at the site and for the checkpoint its corpus came from, so the file records both
(and the corpus seeds, the sparsity, the fit settings, the library and versions) and `load_dictionary` refuses it
anywhere else, as vector files are refused against another checkpoint. The file is a `steer.net.tensor_files` file
(as vector files are): the same bytes every time, readable by plain safetensors, every header field checked on
reading. Its metadata is flat strings (`DictionaryMeta.to_strings`); BatchTopK's threshold is a tensor only when
there is one (per-position TopK has none, and a file holds finite values only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from steer.errors import SteerError, excerpt
from steer.net.sae import FitSettings, TopKSAE
from steer.net.tensor_files import FileProblem, read_tensor_file, tensor_file_bytes
from steer.version import __version__

FORMAT = "steer.dictionary/1"
LIBRARY = "steer.net.sae (TopK SAE in torch)"
WEIGHTS = ("W_enc", "b_enc", "W_dec", "b_dec")
THRESHOLD = "threshold"  # 0-d, BatchTopK's; absent from the file (NaN in the module) for per-position TopK


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
    """The file's bytes for a dictionary and its metadata (`DictionaryMeta.to_strings()`, or a file's own), the
    same bytes every time."""
    tensors = {name: getattr(sae, name).detach() for name in WEIGHTS}
    if not torch.isnan(sae.threshold):
        tensors[THRESHOLD] = sae.threshold.detach()
    return tensor_file_bytes(FORMAT, tensors, {k: v for k, v in meta.items() if k != "format"}, {})


@dataclass(frozen=True)
class Dictionary:
    """A dictionary read back: the module and the metadata strings it was saved with."""

    sae: TopKSAE
    meta: dict[str, str]
    sha256: str  # of the file's bytes, as read

    @property
    def k(self) -> int:
        return self.sae.k


def read_dictionary(path: Path, where: str = "dictionary") -> Dictionary:
    """A dictionary file, checked for its format and tensors (not yet for the run it is used in)."""
    problem = FileProblem(
        where, "a steer dictionary file", "Give a dictionary.safetensors file a `steer features` run wrote."
    )
    tf = read_tensor_file(path, FORMAT, WEIGHTS, problem, optional=(THRESHOLD,))
    tensors, meta = tf.tensors, {"format": tf.format, **tf.fields}
    d_in, d_sae = tensors["W_enc"].shape if tensors["W_enc"].dim() == 2 else (0, 0)
    shapes_ok = (
        d_sae > 0
        and tensors["b_enc"].shape == (d_sae,)
        and tensors["W_dec"].shape == (d_sae, d_in)
        and tensors["b_dec"].shape == (d_in,)
        and tensors.get(THRESHOLD, torch.tensor(0.0)).shape == ()
    )
    k = _int(meta.get("k"))
    if not shapes_ok or k is None or not 1 <= k <= d_sae:
        raise SteerError(
            f"{where}: {excerpt(str(path), 160)} has inconsistent tensors or k ({excerpt(meta.get('k'), 20)}"
            "); the file is damaged. Fit the dictionary again with `steer features`."
        )
    sae = TopKSAE(d_in, d_sae, k)
    with torch.no_grad():
        for name in (*WEIGHTS, *([THRESHOLD] if THRESHOLD in tensors else [])):
            getattr(sae, name).copy_(tensors[name])
    sae.eval()
    sae.requires_grad_(False)
    return Dictionary(sae, meta, tf.sha256)


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
