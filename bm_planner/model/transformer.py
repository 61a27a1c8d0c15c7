"""DifferentiatedTransformer: separate state and action tokens with Diffuse-CLoC's attention mask.

Tokens: T state tokens s_0..s_{T-1} then Ta action tokens a_0..a_{Ta-1} (window indices, see ``config.py``).
Mask (``True`` = may attend), shown for T = 4, Ta = 3 and ``lookahead = 0``::

    query \\ key   s0 s1 s2 s3 | a0 a1 a2
        s0         x  x  x  x  |  .  .  .     states attend to all states (history and future),
        s1         x  x  x  x  |  .  .  .     never to actions
        s2         x  x  x  x  |  .  .  .
        s3         x  x  x  x  |  .  .  .
        a0         x  .  .  .  |  x  .  .     action a_i attends to states s_j, j <= i + lookahead,
        a1         x  x  .  .  |  x  x  .     and to actions a_j, j <= i
        a2         x  x  x  .  |  x  x  x

Consequences (tested): changing a future action changes no state output and no earlier action output (no path
leads from an action token to a state token or to an earlier action token, at any depth). The action-to-state part
is causal per layer only: in the first layer a_i reads the inputs s_j, j <= i + lookahead, but from the second layer
on the state tokens s_j carry information about the whole (noisy) state plan, so every action output depends on all
planned states. That is what lets state-space guidance steer even the first planned action a_N.

History actions (``ModelConfig.history_actions``). With ``True`` (the paper's layout) action tokens also read the
executed history actions a_0..a_{N-1}. Closed loop, that conditioning made our planners unstable: a small error in
an executed action was read back as history and amplified within ~10 control steps (copycat feedback; fed the
expert's actions as history instead, the same model walked 10 s stably). With ``False`` the history action tokens are
hidden (row/column masked, they attend only to themselves), so plans depend on the state history alone.

Noise-level conditioning: each token gets ``pos_emb + level_emb(k)`` added to its input embedding, with its own level
(k_s per state timestep, k_a per action timestep). Additive conditioning (rather than per-token adaLN) keeps the
cost of a block at 12 W^2 parameters; every token carries its own level, so levels can differ freely per token.
Task command (``ModelConfig.command_dim`` > 0, off in the paper): one :class:`CommandEmbedding` of the command (B, C),
added to every token like the level embedding; ``command=None`` uses a learned "no command" vector. Why: the
unconditional model, guided by a root-velocity cost, never started a gait from a standstill (the guided plan slid the
pelvis while the legs kept standing, and the actions follow the legs); the data labels every step with the expert's
command, so conditioning on it makes "start walking" something the model has learned rather than something guidance
must find. Guidance costs still apply on top.
Blocks are pre-LayerNorm with scaled-dot-product attention (attention dropout ``attn_dropout``) and a GELU MLP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bm_planner.model.config import ModelConfig
from bm_planner.model.embeddings import (
    ActionEncoder,
    CommandEmbedding,
    NoiseLevelEmbedding,
    StateEncoder,
    TokenPositionEmbedding,
)


def build_attention_mask(n_states: int, n_actions: int, lookahead: int = 0, hidden_actions: int = 0) -> torch.Tensor:
    """Boolean (T + Ta, T + Ta) mask, rows = queries, ``True`` = may attend (``F.scaled_dot_product_attention``).

    ``hidden_actions`` > 0 hides the first ``hidden_actions`` action tokens (the history actions) from every other
    token: they attend only to themselves and no output depends on them (``ModelConfig.history_actions = False``).
    """
    si = torch.arange(n_states)
    ai = torch.arange(n_actions)
    ss = torch.ones(n_states, n_states, dtype=torch.bool)
    sa = torch.zeros(n_states, n_actions, dtype=torch.bool)
    as_ = si[None, :] <= ai[:, None] + lookahead
    aa = ai[None, :] <= ai[:, None]
    if hidden_actions:
        aa = aa & ((ai[None, :] >= hidden_actions) | (ai[None, :] == ai[:, None]))
    return torch.cat([torch.cat([ss, sa], dim=1), torch.cat([as_, aa], dim=1)], dim=0)


class TransformerBlock(nn.Module):
    """Pre-LN block: x + Drop(Attn(LN(x))) then x + Drop(MLP(LN(x))); x is (B, N, W)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.attn_dropout = attn_dropout
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        hidden = round(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, n, w)))
        return x + self.drop(self.mlp(self.norm2(x)))


class DifferentiatedTransformer(nn.Module):
    """Denoiser network: noisy states/actions and their per-token levels -> predicted clean states/actions.

    Inputs: states (B, T, D), actions (B, Ta, A), k_states (B, T) and k_actions (B, Ta) int64 levels in [0, K];
    ``command`` (B, C) (only with ``config.command_dim = C > 0``; ``None`` = no command) and ``command_drop`` (B,)
    bool (training: rows that use the "no command" embedding).
    Outputs: (x0 states (B, T, D), x0 actions (B, Ta, A)), normalized units like the inputs.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.state_encoder = StateEncoder(c.state_dim, c.width)
        self.action_encoder = ActionEncoder(c.action_dim, c.width)
        self.level_embedding = NoiseLevelEmbedding(c.width, c.num_levels)
        self.position = TokenPositionEmbedding(c.window, c.action_window, c.width)
        self.command_embedding = CommandEmbedding(c.command_dim, c.width) if c.command_dim else None
        self.blocks = nn.ModuleList(
            TransformerBlock(c.width, c.heads, c.mlp_ratio, c.dropout, c.attn_dropout) for _ in range(c.depth)
        )
        self.norm_out = nn.LayerNorm(c.width)
        self.state_head = nn.Linear(c.width, c.state_dim)
        self.action_head = nn.Linear(c.width, c.action_dim)
        hidden = 0 if c.history_actions else c.n_known_actions
        mask = build_attention_mask(c.window, c.action_window, c.action_state_lookahead, hidden)
        self.register_buffer("attn_mask", mask, persistent=False)
        self.apply(_init_weights)
        if self.command_embedding is not None:
            self.command_embedding.reset_parameters()  # zero output: starts as the unconditional model

    def forward(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        k_states: torch.Tensor,
        k_actions: torch.Tensor,
        command: torch.Tensor | None = None,
        command_drop: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        b = states.shape[0]
        expected = {
            "states": (b, c.window, c.state_dim),
            "actions": (b, c.action_window, c.action_dim),
            "k_states": (b, c.window),
            "k_actions": (b, c.action_window),
        }
        for name, value in (("states", states), ("actions", actions), ("k_states", k_states), ("k_actions", k_actions)):
            if tuple(value.shape) != expected[name]:
                raise ValueError(f"{name} must have shape {expected[name]}; got {tuple(value.shape)}")
        pos_s, pos_a = self.position()
        levels = self.level_embedding(torch.cat([k_states, k_actions], dim=1))
        tokens = torch.cat([self.state_encoder(states) + pos_s, self.action_encoder(actions) + pos_a], dim=1)
        x = tokens + levels
        if self.command_embedding is not None:
            x = x + self.command_embedding(command, b, command_drop)[:, None, :].to(x.dtype)
        elif command is not None:
            raise ValueError("this model has no command input (config.command_dim = 0); pass command=None")
        for block in self.blocks:
            x = block(x, self.attn_mask)
        x = self.norm_out(x)
        return self.state_head(x[:, : c.window]), self.action_head(x[:, c.window :])


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
