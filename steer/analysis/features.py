"""`steer features`' measurements: a maze's corpus rows at a conv site, and a dictionary's quality on a held-out
maze, reconstruction and behaviour both, the behaviour exactly from the chain.

A maze's states are the chain's: every open square but the cheese's, in both facings (`facing_inputs`); the corpus
takes them with the cheese kept and with it removed, and each state's activation map gives one row per position
(the channel vector at each of the H x W positions). Faithfulness replaces the site's activation by the
dictionary's reconstruction at every position (`replaced_facing_fields`) and compares the exact episode (P(reach
the cheese), steer.analysis.chain) and every state's action distribution (total variation) with the policy's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from steer.analysis.chain import behaviour
from steer.errors import SteerError
from steer.maze.env import MazeRenderer
from steer.maze.layout import Maze
from steer.net.policy import ImpalaPolicy
from steer.net.sae import TopKSAE
from steer.net.vfield import FieldInputs, facing_inputs, replaced_facing_fields

DENSE = 0.1  # a feature active at more than this fraction of held-out positions is counted dense


def site_rows(policy: ImpalaPolicy, inputs: FieldInputs, site: str, batch_size: int) -> torch.Tensor:
    """The site's activations for every state of `inputs` as rows (states x H x W, channels), float32."""
    with torch.inference_mode():
        a = inputs.prefix(policy, policy.resolve(site), batch_size)[policy.resolve(site)]
    return a.permute(0, 2, 3, 1).reshape(-1, a.shape[1])


def check_rows(rows: torch.Tensor, site: str) -> None:
    if not torch.isfinite(rows).all():
        raise SteerError(f"the activations at {site} hold NaN or inf; the checkpoint's weights are not finite.")


def corpus_rows(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    maze: Maze,
    site: str,
    fraction: float,
    seed: int,
    batch_size: int,
) -> tuple[np.ndarray, int]:
    """A `fraction` of the positions (at least one) of every state of the maze with the cheese kept and removed,
    their channel vectors drawn without replacement (seeded by `seed`); and how many positions there were in all.

    The same fraction of every maze, so that the corpus is a uniform sample of all the corpus mazes' positions:
    the held-out numbers pool positions the same way (a fixed count per maze would over-weight small mazes, whose
    maps are mostly the background outside the maze)."""
    parts = []
    for version in (maze, maze.without_cheese()):
        x = site_rows(policy, facing_inputs(renderer, version), site, batch_size)
        check_rows(x, site)
        parts.append(x)
    everything = torch.cat(parts)
    total = len(everything)
    count = min(total, max(1, round(fraction * total)))
    pick = np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
    return everything[torch.from_numpy(pick)].numpy().copy(), total


@dataclass(frozen=True)
class Quality:
    """One dictionary on one maze's held-out rows: sums from which pooled and per-maze numbers are made."""

    rows: int
    sse: float  # Σ ||x - x̂||²
    sum_x: list[float]  # per channel Σ x (float64), for the pooled variance
    sum_x2: list[float]  # per channel Σ x²
    l0: float  # Σ over rows of the number of active features
    fired: list[int]  # per feature, the rows it was active on

    @property
    def variance_explained(self) -> float | None:
        """1 - SSE / the maze's own total sum of squares about its mean."""
        sx, sx2 = np.array(self.sum_x), np.array(self.sum_x2)
        sst = float((sx2 - sx**2 / self.rows).sum()) if self.rows else 0.0
        return 1.0 - self.sse / sst if sst > 0 else None

    def to_json(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "sse": self.sse,
            "sum_x": self.sum_x,
            "sum_x2": self.sum_x2,
            "l0": self.l0,
            "fired": self.fired,
        }


def quality(sae: TopKSAE, rows: Sequence[torch.Tensor], chunk: int = 65536) -> Quality:
    """The dictionary's reconstruction of `rows` (held-out positions), summed in float64."""
    sse, l0, n = 0.0, 0.0, 0
    d_in = sae.d_in
    sum_x, sum_x2 = np.zeros(d_in), np.zeros(d_in)
    fired = torch.zeros(sae.d_sae, dtype=torch.long)
    with torch.inference_mode():
        for block in rows:
            for i in range(0, len(block), chunk):
                x = block[i : i + chunk]
                z = sae.encode(x)
                x_hat = sae.decode(z)
                active = z > 0
                sse += float(((x_hat - x).double() ** 2).sum())
                l0 += float(active.sum())
                fired += active.sum(0)
                xd = x.double().numpy()
                sum_x += xd.sum(0)
                sum_x2 += (xd**2).sum(0)
                n += len(x)
    return Quality(n, sse, sum_x.tolist(), sum_x2.tolist(), l0, fired.tolist())


@dataclass(frozen=True)
class Faithfulness:
    """One dictionary on one maze: the exact episode and the action distributions with the site reconstructed."""

    p_cheese: float  # P(reach the cheese), the site replaced by its reconstruction
    delta_p_cheese: float  # that − the policy's own
    mean_tv: float  # mean over the chain's states (both facings) of ½ Σ|p − q|
    quality: Quality

    def to_json(self) -> dict[str, object]:
        return {
            "p_cheese": self.p_cheese,
            "delta_p_cheese": self.delta_p_cheese,
            "mean_tv": self.mean_tv,
            "quality": self.quality.to_json(),
        }


def reconstruction(sae: TopKSAE):  # noqa: ANN201 (a closure over the dictionary)
    def replace(a: torch.Tensor) -> torch.Tensor:
        return sae.reconstruct_map(a)

    return replace


def maze_faithfulness(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    maze: Maze,
    site: str,
    saes: Sequence[TopKSAE],
    batch_size: int,
) -> tuple[float, int, list[Faithfulness]]:
    """The policy's own P(reach the cheese), the held-out rows' count, and each dictionary's faithfulness on the
    maze. Reconstruction quality is measured on the same states as the corpus (cheese kept and removed);
    behaviour on the maze as it is (cheese kept)."""
    device = next(policy.parameters()).device
    kept = facing_inputs(renderer, maze, device)
    removed = facing_inputs(renderer, maze.without_cheese(), device)
    rows = [site_rows(policy, kept, site, batch_size), site_rows(policy, removed, site, batch_size)]
    for r in rows:
        check_rows(r, site)
    fields = replaced_facing_fields(policy, kept, site, [None, *(reconstruction(s) for s in saes)], batch_size)
    own = behaviour(fields[0])
    out = []
    for sae, f in zip(saes, fields[1:], strict=True):
        b = behaviour(f)
        tv = float(0.5 * np.abs(fields[0].probs - f.probs).sum(axis=-1).mean()) if f.probs.size else 0.0
        out.append(Faithfulness(b.p_cheese, b.p_cheese - own.p_cheese, tv, quality(sae, rows)))
    return own.p_cheese, sum(len(r) for r in rows), out
