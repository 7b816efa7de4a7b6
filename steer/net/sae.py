"""A per-position ("1x1 convolutional") TopK sparse autoencoder over a conv site's channel vector, and its fit.

The dictionary reads one position's channel vector x (C numbers: 32 at `block2.res1.resadd_out`) and writes
x̂ = W_dec z + b_dec with z = ReLU(TopK(W_enc (x - b_dec) + b_enc)): at most k features active per position
(Gao et al. 2024, "Scaling and evaluating sparse autoencoders"). Applied to a whole activation map it runs at
every one of the H x W positions with the same weights, as a 1x1 convolution would.

Written out here (about a hundred lines of torch) rather than taken from a library: `overcomplete` 0.3.0 imports
torchvision, timm and OpenCV when its package loads, and installing it would replace this project's torch 2.13
(CPU) with 2.14 and CUDA wheels and numpy 1.26 with 2.4; `sae-lens` 6.54 brings transformer-lens, transformers,
datasets and wandb for LLM token streams (docs/features.md has the comparison). The fit is explicit in the
CleanRL way: one function, every setting a field of `FitSettings`, seeded through one torch Generator, so two
fits of the same rows on the same machine give bit-identical weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FitSettings:
    """Everything the fit depends on beside its rows (recorded in the dictionary file's metadata)."""

    k: int  # features active per position (the L0 target)
    expansion: int  # features = expansion x channels
    epochs: int
    seed: int
    # BatchTopK (Bussmann et al. 2024): k x batch features kept over the whole batch in training, so a position may
    # use more or fewer than k; in use, a feature is active where its pre-code exceeds one learned threshold.
    batch_topk: bool = False
    batch: int = 1024
    lr: float = 1e-3
    # AuxK (Gao et al.): the residual is also fitted from the top `aux_k` dead features, at this weight, so that
    # features which stopped firing get a gradient back; a feature is dead after `dead_steps` steps without firing.
    aux_k: int = 16
    aux_weight: float = 1 / 32
    dead_steps: int = 100

    def to_json(self) -> dict[str, int | float]:
        return asdict(self)


class TopKSAE(nn.Module):
    """x̂ = W_dec ReLU(TopK(W_enc (x - b_dec) + b_enc)) + b_dec over rows of `d_in` channels."""

    def __init__(self, d_in: int, d_sae: int, k: int) -> None:
        super().__init__()
        if not 1 <= k <= d_sae:
            raise ValueError(f"k={k} must lie in 1..{d_sae}")
        self.d_in, self.d_sae, self.k = d_in, d_sae, k
        # BatchTopK's threshold (a 0-d tensor, saved with the weights); NaN: per-position TopK
        self.register_buffer("threshold", torch.tensor(float("nan")))
        self.W_enc = nn.Parameter(torch.zeros(d_in, d_sae))
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.W_dec = nn.Parameter(torch.zeros(d_sae, d_in))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def pre_codes(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (rows, d_sae): the k largest pre-codes of each row, ReLU'd, every other feature 0; or, after a
        BatchTopK fit, every pre-code at or above the threshold."""
        pre = self.pre_codes(x)
        if not torch.isnan(self.threshold):
            return pre * (pre >= self.threshold)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def reconstruct_map(self, a: torch.Tensor) -> torch.Tensor:
        """A batch of maps (B, C, H, W) with every position's channel vector replaced by its reconstruction."""
        b, c, h, w = a.shape
        rows = a.permute(0, 2, 3, 1).reshape(-1, c)
        return self(rows).reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous()

    @classmethod
    def identity(cls, d_in: int) -> TopKSAE:
        """A dictionary that returns its input exactly: features +e_c and -e_c, all kept, so that
        x̂ = ReLU(x) - ReLU(-x) = x with every other term an exact zero (the faithfulness test's reference)."""
        sae = cls(d_in, 2 * d_in, 2 * d_in)
        eye = torch.eye(d_in)
        with torch.no_grad():
            sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
            sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
        return sae


CALIBRATION_ROWS = 65536


def calibrated_threshold(sae: TopKSAE, rows: torch.Tensor) -> float:
    """The pre-code threshold at which `rows` have k active features per row on average: the (k x rows)-th largest
    positive pre-code. Set once after a BatchTopK fit, so that the mean L0 on the corpus is k, not what the last
    batches' smallest kept codes would give (about 1.5 k here)."""
    pre = sae.pre_codes(rows).relu().flatten()
    return float(pre.topk(min(sae.k * len(rows), len(pre))).values[-1])


@dataclass(frozen=True)
class FitLog:
    """What the fit did: its steps and, for the last epoch, the training rows' fraction of variance unexplained."""

    steps: int
    rows: int
    final_fvu: float


def fit(rows: torch.Tensor, settings: FitSettings) -> tuple[TopKSAE, FitLog]:
    """Fit a TopK SAE to `rows` (N, C) float32; deterministic for the same rows, settings and thread count."""
    n, d_in = rows.shape
    if n == 0:
        raise ValueError("no rows to fit")
    g = torch.Generator().manual_seed(settings.seed)
    sae = TopKSAE(d_in, settings.expansion * d_in, settings.k)
    with torch.no_grad():
        # Decoder rows random unit directions, the encoder their transpose, the bias the rows' mean (Gao et al.).
        w = torch.randn(sae.d_sae, d_in, generator=g)
        sae.W_dec.copy_(w / w.norm(dim=1, keepdim=True))
        sae.W_enc.copy_(sae.W_dec.T)
        sae.b_dec.copy_(rows.mean(0))
    variance = float(((rows - rows.mean(0)) ** 2).sum(1).mean())  # per row, for a loss on the scale of 1
    opt = torch.optim.Adam(sae.parameters(), lr=settings.lr)
    steps_per_epoch = -(-n // settings.batch)
    total = settings.epochs * steps_per_epoch
    idle = torch.zeros(sae.d_sae, dtype=torch.long)  # steps since each feature last fired
    step, sse = 0, 0.0
    for epoch in range(settings.epochs):
        order = torch.randperm(n, generator=g)
        sse = 0.0
        for i in range(0, n, settings.batch):
            x = rows[order[i : i + settings.batch]]
            pre = sae.pre_codes(x)
            if settings.batch_topk:
                flat = pre.relu().flatten()
                top = flat.topk(settings.k * len(x))
                z = torch.zeros_like(flat).scatter(-1, top.indices, top.values).view_as(pre)
            else:
                top = pre.topk(settings.k, dim=-1)
                z = torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())
            x_hat = sae.decode(z)
            err = ((x_hat - x) ** 2).sum(1)
            loss = err.mean() / variance
            fired = (z > 0).any(0)
            idle = torch.where(fired, 0, idle + 1)
            dead = idle > settings.dead_steps
            if dead.any():
                # AuxK: the top aux_k dead features' codes fit what the live ones left, so they can revive.
                k_aux = min(settings.aux_k, int(dead.sum()))
                masked = pre.masked_fill(~dead, float("-inf")).topk(k_aux, dim=-1)
                z_aux = torch.zeros_like(pre).scatter(-1, masked.indices, masked.values.relu())
                residual = (x - x_hat).detach()
                loss = loss + settings.aux_weight * ((z_aux @ sae.W_dec - residual) ** 2).sum(1).mean() / variance
            # Linear decay over the last fifth of the steps settles the weights without a search over schedules.
            lr = settings.lr * min(1.0, (total - step) / max(1, total // 5))
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():  # unit-norm decoder rows: a feature's size lives in its code, not its direction
                sae.W_dec.div_(sae.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))
            step += 1
            if epoch == settings.epochs - 1:
                sse += float(err.detach().sum())
    if settings.batch_topk:
        with torch.no_grad():
            sae.threshold.fill_(calibrated_threshold(sae, rows[torch.randperm(n, generator=g)[:CALIBRATION_ROWS]]))
    sae.eval()
    sae.requires_grad_(False)
    return sae, FitLog(steps=step, rows=n, final_fvu=sse / (variance * n))
