"""The neural QA model: a small transformer over a call's turns with one head per rubric item.

Each turn is read from its characters (embedding, two convolutions, max over the turn: which words
it holds), plus its numbers (who spoke, where, how long, how fast, emotion) and its place counted from
either end of the call. Self-attention over the turns lets a turn be read in its context: an apology
after a complaint, a verification question before the account is discussed. Each item then has its
own query that picks the turns it cares about (the attention weights are the model's evidence), and
its logit adds the call's feature row (the rules' evidence and the timeline) through a linear path,
so the model starts where the transparent model stands and the turns add what the rules miss.

Inputs as built by :mod:`callqa.models.qa.turn_inputs`; outputs (logits (B, items), attention
(B, items, turns)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from callqa.models.blocks import AttentionBlock, length_mask
from callqa.models.qa.turn_inputs import EDGE, TURN_FEATURES


@dataclass
class TurnQaConfig:
    vocab_size: int = 4000
    items: int = 12
    call_features: int = 0
    turn_features: int = len(TURN_FEATURES)
    char_dim: int = 64
    dim: int = 96
    layers: int = 2
    heads: int = 4
    kernel: int = 3
    dropout: float = 0.1
    #: Per item, the indices of the call features its linear path reads (its own rule's evidence and
    #: the timeline, as the transparent model does); empty: every feature for every item.
    item_features: list[list[int]] = field(default_factory=list)


class CharTurnEncoder(nn.Module):
    """(B, T, L) character ids -> (B, T, dim): what each turn says, independent of its neighbours."""

    def __init__(self, cfg: TurnQaConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.char_dim, padding_idx=0)
        self.conv1 = nn.Conv1d(cfg.char_dim, cfg.dim, cfg.kernel, padding=cfg.kernel // 2)
        self.conv2 = nn.Conv1d(cfg.dim, cfg.dim, cfg.kernel, padding=cfg.kernel // 2)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        b, t, w = chars.shape
        flat = chars.reshape(b * t, w)
        present = (flat != 0)[:, None, :]
        x = self.embed(flat).transpose(1, 2)
        x = nn.functional.gelu(self.conv1(x))
        x = x + nn.functional.gelu(self.conv2(x))
        # max over the turn's characters; a turn with none (silence, padding) reads as zeros
        pooled = x.masked_fill(~present, -1e4).amax(dim=2)
        pooled = pooled * present.any(dim=2).to(pooled.dtype)
        return pooled.reshape(b, t, -1)


class TurnQa(nn.Module):
    def __init__(self, cfg: TurnQaConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.text = CharTurnEncoder(cfg)
        self.numbers = nn.Linear(cfg.turn_features, d)
        self.from_start = nn.Embedding(EDGE, d)
        self.from_end = nn.Embedding(EDGE, d)
        self.blocks = nn.ModuleList(AttentionBlock(d, cfg.heads, cfg.dropout) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(d)
        self.queries = nn.Parameter(torch.randn(cfg.items, d) * d**-0.5)
        self.call = nn.Sequential(nn.Linear(max(cfg.call_features, 1), d), nn.GELU(), nn.Dropout(cfg.dropout))
        self.hidden = nn.Linear(2 * d, d)
        self.head = nn.Parameter(torch.zeros(cfg.items, d))
        self.bias = nn.Parameter(torch.zeros(cfg.items))
        self.linear = nn.Linear(max(cfg.call_features, 1), cfg.items)
        mask = torch.ones(cfg.items, max(cfg.call_features, 1))
        if cfg.item_features:
            mask.zero_()
            for k, idx in enumerate(cfg.item_features):
                mask[k, idx] = 1.0
        self.register_buffer("feature_mask", mask, persistent=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        chars: torch.Tensor,
        turn_features: torch.Tensor,
        edges: torch.Tensor,
        turns: torch.Tensor,
        call: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mask = length_mask(turns, chars.shape[1])
        x = self.text(chars) + self.numbers(turn_features)
        x = self.drop(x + self.from_start(edges[..., 0]) + self.from_end(edges[..., 1]))
        x = x * mask[..., None]
        for block in self.blocks:
            x = block(x, mask)
        x = self.norm(x)
        scores = torch.einsum("btd,id->bit", x, self.queries) * x.shape[-1] ** -0.5
        attention = scores.masked_fill(~mask[:, None, :], -1e4).softmax(dim=-1)
        pooled = attention @ x  # (B, items, d)
        if self.cfg.call_features == 0:  # no feature row: a constant input keeps one graph
            call = torch.ones(call.shape[0], 1, dtype=x.dtype, device=x.device)
        c = self.call(call)[:, None, :].expand_as(pooled)
        h = nn.functional.gelu(self.hidden(torch.cat([pooled, c], dim=-1)))
        direct = call @ (self.linear.weight * self.feature_mask).T + self.linear.bias
        logits = torch.einsum("bid,id->bi", self.drop(h), self.head) + self.bias + direct
        return logits, attention


class TurnQaEnsemble(nn.Module):
    """Several turn models on one encoding, judged together: the mean of their logits and attention.
    The cross-fitted members of ``callqa train qa-turns``, each trained with another fold held out."""

    def __init__(self, members: list[dict]):
        super().__init__()
        cfgs = [TurnQaConfig(**{k: v for k, v in m.items() if k != "type"}) for m in members]
        self.members = nn.ModuleList(TurnQa(c) for c in cfgs)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [m(*inputs) for m in self.members]
        return torch.stack([o[0] for o in outs]).mean(0), torch.stack([o[1] for o in outs]).mean(0)
