"""Finding, verifying and loading policy checkpoints.

A checkpoint is named on the command line (`--checkpoint`), in a spec (`checkpoint:`), by the environment
(`STEER_CHECKPOINT`), or falls back to the default `maze-rr5-easy-160M`. A name is either a path to a
`.pth` file or one of the known checkpoints below, looked for in `./checkpoints/`, `../shared/checkpoints/`
(beside the working folder or this project), the user cache, and finally downloaded from its public URL
with a sha256 check. Checkpoint files never live in this repository.

A checkpoint file is untrusted input: it is read with `torch.load(weights_only=True)`, which restores
tensors and plain containers but refuses to import arbitrary Python objects, since unpickling those runs code
chosen by whoever made the file. A legacy checkpoint that needs that is refused unless the caller passes
`allow_pickle=True` (the CLI's `--allow-pickle-checkpoint`). Loaded weights are checked against the policy
(a channel scale of 1 to MAX_SCALE, then names, shapes and floating dtypes, all before the policy is built, then
finite values in float32) so a wrong file is one clear message, never a broken policy or a huge allocation.
float16, bfloat16 and float64 weights are converted to float32 (float64 rounds); integer weights are refused.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from steer.errors import SteerError, excerpt
from steer.io import create_temp, sha256_file
from steer.net import compiled
from steer.net.policy import ImpalaPolicy

DEFAULT_CHECKPOINT = "maze-rr5-easy-160M"
ALLOW_PICKLE_FLAG = "--allow-pickle-checkpoint"
ENV_VAR = "STEER_CHECKPOINT"
_SOURCE = "https://github.com/GarretteBaker/train-procgen-pytorch_devinterp/raw"


@dataclass(frozen=True)
class KnownCheckpoint:
    name: str
    sha256: str | None
    url: str
    mode: str
    note: str

    @property
    def filename(self) -> str:
        return f"{self.name}.pth"


KNOWN: dict[str, KnownCheckpoint] = {
    k.name: k
    for k in [
        KnownCheckpoint(
            "maze-rr5-easy-160M",
            "e82e620ee1c47d82684bb3bc84e140ffd7bbb4ca8bd5f0cc517370abab9e3f00",
            f"{_SOURCE}/ee2ca6f6ecc420bd5a4a2e59c11e6467c73b5ea2/artifacts/model_160022528%3Av0/model_160022528.pth",
            "easy",
            "PPO, 160M steps, easy mode, cheese in the top-right 5x5 region (rand_region=5)",
        ),
        KnownCheckpoint(
            "maze-rr5-easy-2M",
            "56aaec5acdca30bbe6021f649318e7b0ef7348f3e36bfde4aeec1600f416a430",
            f"{_SOURCE}/6d26acc0d00d07ca581b1bf2af9758dc84f9113e/artifacts/model_2031616%3Av0/model_2031616.pth",
            "easy",
            "PPO, 2M steps of the same run (reaches the cheese in about half of easy levels)",
        ),
        KnownCheckpoint(
            "maze-rr5-easy-0.75M",
            "b12739f045919b5eb6417d1270e3fc00fc1f0d68bd3621055491cc1616c29f14",
            f"{_SOURCE}/ee2ca6f6ecc420bd5a4a2e59c11e6467c73b5ea2/artifacts/model_753664%3Av0/model_753664.pth",
            "easy",
            "PPO, 0.75M steps of the same run",
        ),
        KnownCheckpoint(
            "model_rand_region_5",
            None,  # not published with a hash; it is loaded from a path, never downloaded
            "https://nerdsniper.net/mats/model_rand_region_5.pth",
            "hard",
            "Langosco et al.'s maze_I checkpoint used by Turner et al. (channel scale 4, hard mode)",
        ),
    ]
}
_BY_SHA = {k.sha256: k for k in KNOWN.values() if k.sha256}


@dataclass(frozen=True)
class Checkpoint:
    """A loaded policy and where it came from."""

    path: Path
    sha256: str
    name: str
    mode: str  # the distribution mode it was trained in
    mode_source: str  # "registry" or "inferred from channel scale"
    scale: int
    policy: ImpalaPolicy

    def provenance(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "training_mode": self.mode,
            "training_mode_source": self.mode_source,
            "channel_scale": self.scale,
            "parameters": sum(p.numel() for p in self.policy.parameters()),
        }


sha256_of = sha256_file  # the older name, kept for callers


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "steer" / "checkpoints"


def _search_dirs() -> list[Path]:
    project = Path(__file__).resolve().parents[2]  # steer/net/checkpoints.py -> the project folder
    dirs = [Path.cwd() / "checkpoints", Path.cwd().parent / "shared" / "checkpoints"]
    dirs += [project / "checkpoints", project.parent / "shared" / "checkpoints", cache_dir()]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


_HOW = (
    "Give a checkpoint with --checkpoint PATH, `checkpoint:` in the spec or the STEER_CHECKPOINT "
    f"environment variable, or put a known one ({', '.join(KNOWN)}) in ./checkpoints/ or "
    "../shared/checkpoints/."
)


def locate(ref: str | os.PathLike[str] | None) -> Path:
    """The file a checkpoint reference names (CLI/spec value, else STEER_CHECKPOINT, else the default)."""
    if ref is None or str(ref) == "":
        ref = os.environ.get(ENV_VAR) or DEFAULT_CHECKPOINT
    ref = str(ref)
    path = Path(ref).expanduser()
    try:
        is_dir, is_file, exists = path.is_dir(), path.is_file(), path.exists()
    except OSError as e:  # e.g. a name longer than the file system allows
        raise SteerError(
            f"checkpoint: {excerpt(ref)} cannot be used as a file name ({e.strerror or e}). {_HOW}"
        ) from None
    if is_dir:
        raise SteerError(
            f"checkpoint: {excerpt(ref, 160)} is a folder, not a checkpoint file. Name the .pth file in it. {_HOW}"
        )
    if ref not in KNOWN and (path.suffix or os.sep in ref):
        if exists and not is_file:  # a device (/dev/zero), a pipe or a socket: reading it may never end
            raise SteerError(
                f"checkpoint: {excerpt(ref, 160)} is not a regular file (it is a device, pipe or socket). {_HOW}"
            )
        if not is_file:
            raise SteerError(f"checkpoint: file {excerpt(ref, 160)} does not exist. {_HOW}")
        return path
    name = ref.removesuffix(".pth")
    if name not in KNOWN:
        raise SteerError(f"checkpoint: {excerpt(ref)} is neither a file nor a known checkpoint name. {_HOW}")
    known = KNOWN[name]
    for d in _search_dirs():
        candidate = d / known.filename
        if candidate.is_file():
            return candidate
    return _download(known)


def _download(known: KnownCheckpoint) -> Path:
    if known.sha256 is None:
        raise SteerError(
            f"checkpoint: {known.name!r} is not on this machine and has no published sha256, so it is "
            f"not downloaded automatically. Fetch it from {known.url} yourself and pass its path with "
            "--checkpoint."
        )
    dest = cache_dir() / known.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp(dest.parent, known.filename, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(known.url, timeout=60) as resp:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
        got = sha256_of(tmp)
        if got != known.sha256:
            raise SteerError(
                f"checkpoint: the download of {known.name!r} from {known.url} has sha256 {got}, expected "
                f"{known.sha256}; it was discarded. {_HOW}"
            )
        tmp.replace(dest)
        return dest
    except (urllib.error.URLError, OSError) as e:
        raise SteerError(
            f"checkpoint: {known.name!r} was not found locally and could not be downloaded from "
            f"{known.url} ({e}). {_HOW}"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def path_text(path: Path) -> str:
    return excerpt(str(path), 160)


def pickle_global(error: Exception) -> str | None:
    """The Python object a weights-only `torch.load` refused to import, or None if that was not the reason.

    torch raises UnpicklingError both for such a file (one that only full unpickling can load, which would
    run its code) and for bytes that are no pickle at all; only the first names a GLOBAL.
    """
    text = str(error)
    match = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"Unsupported class ([\w.]+)", text)
    return match.group(1) if match else None


def _read(path: Path, allow_pickle: bool) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except Exception as e:  # torch raises many types for non-checkpoint bytes
        name = None if allow_pickle else pickle_global(e)
        if name is not None:
            raise SteerError(
                f"checkpoint: {path_text(path)} is a legacy pickle that needs the Python object {excerpt(name)} to "
                "load, and unpickling it would run whatever code the file contains, so steer refuses it. Pass "
                f"{ALLOW_PICKLE_FLAG} only for a file you trust (you made it, or it comes from a source you "
                "trust); better, re-save its weights once with torch.save({'state_dict': model.state_dict()}, "
                "PATH)."
            ) from None
        raise SteerError(
            f"checkpoint: {path_text(path)} could not be read as a PyTorch checkpoint ({type(e).__name__}: "
            f"{excerpt(str(e).splitlines()[0], 120) if str(e) else 'no detail'}). The file may be truncated or "
            f"not a checkpoint. {_HOW}"
        ) from None


def _state_dict(raw: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(raw, torch.nn.Module):  # a whole pickled model, readable only with allow_pickle
        return raw.state_dict()
    if isinstance(raw, dict):
        for key in ("state_dict", "model_state_dict"):
            if key in raw and isinstance(raw[key], dict):
                return raw[key]
        if raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
            return raw  # a bare state dict
    raise SteerError(
        f"checkpoint: {path_text(path)} is not a maze policy checkpoint: expected a dict with 'state_dict' or "
        f"'model_state_dict', or a bare state dict. {_HOW}"
    )


def _shape(t: torch.Tensor | torch.Size) -> str:
    return "[" + ", ".join(str(n) for n in (t if isinstance(t, torch.Size) else t.shape)) + "]"


MAX_SCALE = 8  # the known checkpoints have channel scale 1 and 4; a scale-8 policy already holds ~30M weights


def _scale(state: dict[str, object], path: Path) -> int:
    """The channel scale the first layer declares, refused unless 1..MAX_SCALE.

    Read before anything is built: a tiny file can declare 160,000 channels, and a policy that wide would
    take terabytes.
    """
    weight = state.get("embedder.block1.conv.weight")
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        raise SteerError(
            f"checkpoint: {path_text(path)} has no 'embedder.block1.conv.weight'; it is not an Impala maze policy. "
            f"{_HOW}"
        )
    channels = int(weight.shape[0])
    scale, rem = divmod(channels, 16)
    if rem or scale < 1:
        raise SteerError(f"checkpoint: {path_text(path)} has {channels} first-layer channels; expected 16·k.")
    if scale > MAX_SCALE:
        raise SteerError(
            f"checkpoint: {path_text(path)} declares {channels} first-layer channels (channel scale {scale}); steer "
            f"loads Impala maze policies of channel scale 1 to {MAX_SCALE} (16 to {16 * MAX_SCALE} channels; the "
            f"known checkpoints have scale 1 and 4). Use a checkpoint of procgen maze's Impala policy. {_HOW}"
        )
    return scale


def expected_shapes(scale: int) -> dict[str, torch.Size]:
    """The name and shape of every tensor of an `ImpalaPolicy(scale)`, without allocating its weights."""
    with torch.device("meta"):  # shapes only: no memory is allocated for the weights
        return {key: t.shape for key, t in ImpalaPolicy(scale).state_dict().items()}


def _check_fits(expected: dict[str, torch.Size], scale: int, state: dict[str, object], path: Path) -> None:
    """Every tensor the policy needs, with its shape and a floating dtype, and nothing else; the first few
    problems are named.

    torch's own load_state_dict error lists every mismatch on its own line (and its first line says
    nothing), so the message is built here: which key, the shape expected and the shape found.
    """
    problems: list[str] = []
    for key, want in expected.items():
        got = state.get(key)
        if key not in state:
            problems.append(f"tensor {key!r} is missing")
        elif not isinstance(got, torch.Tensor):
            problems.append(f"{key!r} is {excerpt(got, 40)}, not a tensor")
        elif got.shape != want:
            problems.append(f"tensor {key!r} has shape {_shape(got)}, expected {_shape(want)}")
    problems += [f"{excerpt(key, 60)} is not a tensor of this policy" for key in state if key not in expected]
    if problems:
        more = f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else ""
        raise SteerError(
            f"checkpoint: {path_text(path)} does not fit the Impala maze policy of channel scale {scale}: "
            f"{'; '.join(problems[:3])}{more}. Use a checkpoint of procgen maze's Impala policy. {_HOW}"
        )
    for key, got in state.items():
        if isinstance(got, torch.Tensor) and not got.dtype.is_floating_point:
            raise SteerError(
                f"checkpoint: {path_text(path)} tensor {key!r} holds {str(got.dtype).removeprefix('torch.')} values; a "
                "policy's weights are floating point (float32; float16, bfloat16 and float64 are converted to "
                "float32). The file is not a trained policy's weights; use another checkpoint."
            )


def _as_float32(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights as the policy holds them (float32): float16/bfloat16 convert exactly, float64 rounds."""
    return {key: t if t.dtype == torch.float32 else t.to(torch.float32) for key, t in state.items()}


def _check_finite(state: dict[str, torch.Tensor], path: Path) -> None:
    """No NaN or inf, once in float32 (a float64 1e300 is finite, but not as the policy's float32)."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise SteerError(
                f"checkpoint: {path_text(path)} tensor {excerpt(key, 60)} holds {bad} NaN or infinite values (of "
                f"{tensor.numel()}); the file is corrupt or from a diverged training run. Use another checkpoint."
            )


def full_float32(device: str) -> None:
    """On a CUDA device, compute in full float32: cuDNN convolutions use TF32 by default on Ampere and later GPUs,
    which keeps 10 bits of mantissa and moves probabilities by ~1e-3, far beyond the reproducibility contract's
    tolerance (docs/reproducibility.md). A no-op on the CPU."""
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")  # the fc layers: no TF32 matrix products either


def load(ref: str | os.PathLike[str] | None = None, device: str = "cpu", allow_pickle: bool = False) -> Checkpoint:
    """Locate, hash and load a checkpoint into an `ImpalaPolicy` in eval mode.

    `allow_pickle` permits a legacy checkpoint that only full unpickling can read, which runs code from the
    file: pass it only for a file the user trusts (`--allow-pickle-checkpoint`).
    """
    path = locate(ref)
    sha = sha256_of(path)
    known = _BY_SHA.get(sha) or KNOWN.get(path.stem)
    if known is not None and known.sha256 not in (None, sha):
        # Checked before reading: a file posing as a known checkpoint is never unpickled.
        raise SteerError(
            f"checkpoint: {path_text(path)} is named like the known checkpoint {known.name!r} but its sha256 is "
            f"{sha}, not {known.sha256}. The file is corrupt or a different model; replace it."
        )
    state = _state_dict(_read(path, allow_pickle), path)
    scale = _scale(state, path)
    # Every name, shape and dtype is checked against the expected ones before the policy is built.
    _check_fits(expected_shapes(scale), scale, state, path)
    state = _as_float32(state)
    _check_finite(state, path)
    policy = ImpalaPolicy(scale)
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as e:  # _check_fits should have said why; keep one line of torch's reason if not
        detail = [line.strip() for line in str(e).splitlines() if line.strip()][-1:] or ["no detail"]
        raise SteerError(
            f"checkpoint: {path_text(path)} does not fit the Impala maze policy: {excerpt(detail[0], 200)} {_HOW}"
        ) from None
    # Channels-last weights match the NHWC layout procgen frames arrive in; CPU convolutions run faster so.
    full_float32(device)
    policy.eval().to(device=device, memory_format=torch.channels_last)
    for p in policy.parameters():
        p.requires_grad_(False)
    # The compiled units where `steer tune` chose them on this machine (bit-identical to eager), else eager.
    compiled.attach(policy, device)
    if known is not None:
        name, mode, source = known.name, known.mode, "registry"
    else:
        # Scale-4 Impala maze policies are the Langosco et al. family, trained in hard mode.
        name, mode, source = path.stem, ("hard" if scale == 4 else "easy"), "inferred from channel scale"
    return Checkpoint(path, sha, name, mode, source, scale, policy)
