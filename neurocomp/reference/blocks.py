"""A recurrent network's weights as the three dense matrices a float reference learns
(input -> hidden ``W_in``, hidden -> hidden ``W_rec``, hidden -> readout ``W_out``), with
each projection's block in them; shared by e-prop's and the gated network's references."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError, Problem


@dataclass
class DenseBlocks:
    """``W_*`` the weights (float64, ``[post, pre]``), ``m_in``/``m_rec`` 1 where a synapse
    exists (a sparse projection's zeros are absent), ``blocks`` each projection's
    ``(matrix, rows, cols)``."""

    W_in: np.ndarray
    W_rec: np.ndarray
    W_out: np.ndarray
    m_in: np.ndarray
    m_rec: np.ndarray
    blocks: dict[str, tuple[str, slice, slice]]


def offsets(pops: Sequence) -> dict[str, slice]:
    """Each population's rows when ``pops`` are concatenated in order."""
    out, i = {}, 0
    for p in pops:
        out[p.name] = slice(i, i + p.size)
        i += p.size
    return out


def dense_blocks(net, ins: Sequence, recs: Sequence, ro, what: str, rule: str | None = None) -> DenseBlocks:
    """The projections of ``net`` between input populations ``ins``, hidden ``recs`` and the
    readout ``ro`` as :class:`DenseBlocks`; with ``rule``, plastic projections of another rule
    are left out. ``what`` names the reference in errors; a projection with extra delays or
    outside the architecture is refused, all of them at once."""
    off_in, off_rec = offsets(ins), offsets(recs)
    n_in, n_rec = sum(p.size for p in ins), sum(p.size for p in recs)
    W_in, W_rec, W_out = np.zeros((n_rec, n_in)), np.zeros((n_rec, n_rec)), np.zeros((ro.size, n_rec))
    m_in, m_rec = np.zeros_like(W_in), np.zeros_like(W_rec)
    blocks: dict[str, tuple[str, slice, slice]] = {}
    problems: list[Problem] = []
    for pr in net.projections:
        if rule is not None and pr.plasticity is not None and pr.plasticity.name != rule:
            continue
        where = f"projection {pr.name!r}"
        if pr.max_delay:
            problems.append(Problem(where, f"{what} has no extra delays"))
            continue
        w = pr.dense_weights()
        present = (w != 0) if pr.is_sparse else np.ones_like(w)
        if pr.post == ro.name and pr.pre in off_rec:
            W_out[:, off_rec[pr.pre]] = w
            blocks[pr.name] = ("W_out", slice(0, ro.size), off_rec[pr.pre])
        elif pr.post in off_rec and pr.pre in off_in:
            rows, cols = off_rec[pr.post], off_in[pr.pre]
            W_in[rows, cols], m_in[rows, cols] = w, present
            blocks[pr.name] = ("W_in", rows, cols)
        elif pr.post in off_rec and pr.pre in off_rec:
            rows, cols = off_rec[pr.post], off_rec[pr.pre]
            W_rec[rows, cols], m_rec[rows, cols] = w, present
            blocks[pr.name] = ("W_rec", rows, cols)
        else:
            problems.append(Problem(where, f"{pr.pre} -> {pr.post} is not part of {what}'s architecture"))
    if problems:
        raise ModelError(problems)
    return DenseBlocks(W_in, W_rec, W_out, m_in, m_rec, blocks)
