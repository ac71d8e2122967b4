"""CommNet's network (Sukhbaatar, Szlam & Fergus, 2016): encoder, K communication hops, action and baseline heads.

Shapes: ``B`` games, ``A`` agent slots, ``H`` hidden units. One environment step runs ``hops`` applications of
the module f (Lua ``--nhop``)::

    e = encoder(s)                                  # the skip: fed to every hop (Lua adds Enc(s) at every hop)
    h, c = 0, 0   (mlp: every step)   |   carried over time, h starting at init_hid (rnn / lstm)
    for k in 1..K:  h = f_k([e, h, c]);  c = communicate(h)     # c of the last hop only feeds step t+1
    action = log_softmax(W_a h),  baseline = W_b h

so a feed-forward CommNet with K hops communicates K-1 times (K=1 never communicates, as in the Lua code), and
a recurrent one also passes the last hop's message to the next time step (communication through time). A
single-layer f on ``[e, h, c]`` is Lua's ``nonlin(Enc s + W h + C c)``; deeper f (``f_layers``) are the lever
model's "stream layers" (``levers/conv_model.lua``: Linear-ReLU-Linear-ReLU-Linear over ``[id_emb, h, c]``).

``communicate`` by ``comm`` mode:

- ``commnet``: c_j = 1/(J'-1) sum_{j' != j} h_j' over the *other active* agents (J' = active agents); inactive
  agents neither send nor receive. The Lua sender-side linear map C is folded into f (C mean(h) = mean(C h)).
- ``independent``: c = 0 (the same network, communication masked).
- ``fully-connected``: c_j = sum_{j' != j} W_{j,j'} h_j' with a weight block per (receiver, sender) pair, i.e. a
  dense layer over the concatenation of all hidden states (Lua ``--fully_connected``: sum, not average). Unlike
  the Lua baseline, f and the heads stay shared across slots, and inactive agents are masked like CommNet's.
- ``discrete``: each active agent samples a symbol from a softmax head on h (``discrete_vocab`` words); c_j is
  the average of the other active agents' one-hot symbols. The symbols are trained by REINFORCE with the same
  advantage as the actions (Lua ``--nactions_comm``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import nn

if TYPE_CHECKING:
    from anew.agents.commnet import CommNetConfig


# ---------------------------------------------------------------------- pure functions
def comm_weights(active: torch.Tensor) -> torch.Tensor:
    """``[..., A, A]`` (receiver, sender) weights 1/(J'-1) between distinct active agents, 0 elsewhere."""
    active = active.bool()
    eye = torch.eye(active.shape[-1], dtype=torch.bool, device=active.device)
    pairs = active[..., :, None] & active[..., None, :] & ~eye
    others = pairs.sum(-1, keepdim=True).clamp(min=1)
    return pairs.float() / others


def mean_over_others(messages: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """``[..., A, D]``: for each active agent the mean of the other active agents' messages (zeros when it
    is inactive or alone)."""
    return comm_weights(active).to(messages.dtype) @ messages


def sample_categorical(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draws from ``probs[..., n]`` given uniforms ``[...]`` in [0, 1) (one draw each)."""
    cdf = probs.cumsum(-1)
    index = (uniforms.unsqueeze(-1).to(cdf.dtype) >= cdf).sum(-1)
    return index.clamp(max=probs.shape[-1] - 1)


def init_parameters(module: nn.Module, std: float, generator: torch.Generator) -> None:
    """Lua ``--init_std``: every parameter ~ N(0, std); with std 0, Torch7's defaults (Linear: U(+-1/sqrt(fan_in))
    for weight and bias; LookupTable: N(0, 1)). Draws come from ``generator`` only."""
    for child in module.modules():
        for name, param in child.named_parameters(recurse=False):
            with torch.no_grad():
                if std > 0:
                    param.normal_(0.0, std, generator=generator)
                elif isinstance(child, nn.Embedding):
                    param.normal_(0.0, 1.0, generator=generator)
                else:
                    fan_in = child.weight.shape[-1] if hasattr(child, "weight") else param.shape[-1]
                    bound = 1.0 / math.sqrt(fan_in)
                    param.uniform_(-bound, bound, generator=generator)


# ---------------------------------------------------------------------- the network
class NetState(NamedTuple):
    """Per-slot recurrent state ``[B, A, ·]``: hidden h, LSTM cell (zeros for other modules), message c."""

    hidden: torch.Tensor
    cell: torch.Tensor
    comm: torch.Tensor


class StepOutput(NamedTuple):
    """One environment step: action log-probs ``[B, A, n]``, baselines ``[B, A]``, the next state, the symbols
    sent ``[K, B, A]`` (discrete mode; zeros otherwise), their summed log-probs ``[B, A]`` and the mean norm and
    mean absolute value of the messages received by active agents (scalars)."""

    log_probs: torch.Tensor
    baseline: torch.Tensor
    state: NetState
    symbols: torch.Tensor
    symbol_log_prob: torch.Tensor
    message_norm: torch.Tensor
    message_abs: torch.Tensor


class Unrolled(NamedTuple):
    """A replayed sequence: action log-probs ``[T, B, A, n]``, baselines ``[T, B, A]``, log-probs of what was
    taken (actions plus symbols) ``[T, B, A]`` and the mean message statistics."""

    log_probs: torch.Tensor
    baseline: torch.Tensor
    chosen: torch.Tensor
    message_norm: torch.Tensor
    message_abs: torch.Tensor


class FullyConnectedComm(nn.Module):
    """c_j = sum_{j' != j, both active} W_{j,j'} h_j': a dense layer over all agents' concatenated states."""

    def __init__(self, agents: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(agents, agents, width, width))

    def forward(self, hidden: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        mask = (comm_weights(active) > 0).to(hidden.dtype)  # [B, recv, send]
        return torch.einsum("bij,ijkd,bjd->bik", mask, self.weight, hidden)


def mlp(sizes: list[int], activation: type[nn.Module], activate_output: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or activate_output:
            layers.append(activation())
    return nn.Sequential(*layers)


ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "none": nn.Identity}


class CommNetNetwork(nn.Module):
    """Encoder, ``hops`` modules f (shared or one per hop), the communication, and the two heads."""

    def __init__(
        self,
        config: CommNetConfig,
        obs_dim: int,
        discrete_obs: bool,
        num_actions: int,
        num_agents: int,
        generator: torch.Generator,
    ):
        super().__init__()
        self.config = config
        self.hops, self.mode, self.module = config.hops, config.comm, config.module
        self.recurrent = config.module in ("rnn", "lstm")
        hidden = config.hidden
        # LSTM: the encoder maps to the 4H gate inputs, as Lua's Enc does for its LSTM.
        enc_width = 4 * hidden if config.module == "lstm" else hidden
        self.encoder: nn.Module = (
            nn.Embedding(obs_dim, enc_width) if discrete_obs else nn.Linear(obs_dim, enc_width)
        )
        self.comm_dim = config.discrete_vocab if config.comm == "discrete" else hidden
        f_in = enc_width + hidden + self.comm_dim
        f_out = 4 * hidden if config.module == "lstm" else hidden
        sizes = [f_in] * config.f_layers + [f_out]
        activate = config.f_activate_output and config.module != "lstm"
        count = 1 if config.share_hops else config.hops
        activation = ACTIVATIONS[config.nonlin]
        self.f = nn.ModuleList(mlp(sizes, activation, activate) for _ in range(count))
        self.fully_connected = nn.ModuleList(
            FullyConnectedComm(num_agents, hidden)
            for _ in range(count if config.comm == "fully-connected" else 0)
        )
        self.symbol_head = nn.Linear(hidden, config.discrete_vocab) if config.comm == "discrete" else None
        self.action_head = nn.Linear(hidden, num_actions)
        self.baseline_head = nn.Linear(hidden, 1)
        init_parameters(self, config.init_std, generator)

    def initial_state(self, batch: int, agents: int, device: torch.device | str = "cpu") -> NetState:
        """Episode-start state: h = init_hid (recurrent) or 0, cell = init_hid (LSTM), no message yet."""
        value = self.config.init_hid if self.recurrent else 0.0
        hidden = torch.full((batch, agents, self.config.hidden), value, device=device)
        cell = hidden.clone() if self.module == "lstm" else torch.zeros_like(hidden)
        return NetState(hidden, cell, torch.zeros(batch, agents, self.comm_dim, device=device))

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        if isinstance(self.encoder, nn.Embedding):
            return self.encoder(obs.long())
        return self.encoder(obs.flatten(2).float())

    def communicate(
        self,
        hop: int,
        hidden: torch.Tensor,
        active: torch.Tensor,
        uniforms: torch.Tensor | None,
        forced: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(message received ``[B, A, C]``, symbol sent ``[B, A]``, its log-prob ``[B, A]``)."""
        none = torch.zeros(hidden.shape[:2], device=hidden.device)
        if self.mode == "independent":
            return torch.zeros(*hidden.shape[:2], self.comm_dim, device=hidden.device), none.long(), none
        if self.mode == "commnet":
            return mean_over_others(hidden, active), none.long(), none
        if self.mode == "fully-connected":
            layer = self.fully_connected[0 if self.config.share_hops else hop]
            return layer(hidden, active), none.long(), none
        log_probs = torch.log_softmax(self.symbol_head(hidden), -1)
        if forced is not None:
            symbols = forced
        elif uniforms is not None:
            symbols = sample_categorical(log_probs.exp(), uniforms)
        else:
            symbols = log_probs.argmax(-1)
        one_hot = nn.functional.one_hot(symbols, self.comm_dim).to(hidden.dtype)
        chosen = log_probs.gather(-1, symbols.unsqueeze(-1)).squeeze(-1) * active
        return mean_over_others(one_hot, active), symbols, chosen

    def step(
        self,
        obs: torch.Tensor,
        active: torch.Tensor,
        state: NetState,
        symbol_uniforms: torch.Tensor | None = None,
        symbols: torch.Tensor | None = None,
    ) -> StepOutput:
        """One environment step for ``obs[B, A, ...]``. Discrete messages are drawn from ``symbol_uniforms``
        ``[K, B, A]``, replayed from ``symbols`` ``[K, B, A]`` (learning), or the most likely (neither)."""
        active_f = active.to(torch.float32)
        e = self.encode(obs)
        hidden, cell, comm = state if self.recurrent else self.initial_state(*obs.shape[:2], obs.device)
        sent = torch.zeros(self.hops, *obs.shape[:2], dtype=torch.long, device=obs.device)
        symbol_log_prob = torch.zeros(obs.shape[:2], device=obs.device)
        norms, abs_values = [], []
        for hop in range(self.hops):
            f = self.f[0 if self.config.share_hops else hop]
            pre = f(torch.cat([e, hidden, comm], -1))
            if self.module == "lstm":
                forget, write, read, candidate = pre.chunk(4, -1)
                cell = torch.sigmoid(forget) * cell + torch.sigmoid(write) * torch.tanh(candidate)
                hidden = torch.sigmoid(read) * torch.tanh(cell)
            else:
                hidden = pre
            if hop < self.hops - 1 or self.recurrent:  # a feed-forward net's last message would go nowhere
                uniforms = None if symbol_uniforms is None else symbol_uniforms[hop]
                forced = None if symbols is None else symbols[hop]
                comm, sent[hop], chosen = self.communicate(hop, hidden, active_f, uniforms, forced)
                symbol_log_prob = symbol_log_prob + chosen
                with torch.no_grad():
                    receivers = active_f.sum().clamp(min=1)
                    norms.append((comm.norm(dim=-1) * active_f).sum() / receivers)
                    abs_values.append((comm.abs().mean(-1) * active_f).sum() / receivers)
        zero = torch.zeros((), device=obs.device)
        return StepOutput(
            torch.log_softmax(self.action_head(hidden), -1),
            self.baseline_head(hidden).squeeze(-1),
            NetState(hidden, cell, comm),
            sent,
            symbol_log_prob,
            torch.stack(norms).mean() if norms else zero,
            torch.stack(abs_values).mean() if abs_values else zero,
        )

    def unroll(
        self,
        obs: torch.Tensor,
        active: torch.Tensor,
        done: torch.Tensor,
        actions: torch.Tensor,
        symbols: torch.Tensor | None = None,
    ) -> Unrolled:
        """Replay buffered steps ``[T, B, ...]`` with gradients: each game starts from the initial state at row 0
        and after every finished episode; discrete symbols are replayed from ``symbols[T, K, B, A]``."""
        fresh = self.initial_state(*obs.shape[1:3], obs.device)
        state = fresh
        log_probs, baselines, chosen, norms, abs_values = [], [], [], [], []
        for t in range(obs.shape[0]):
            if t > 0:  # a new episode starts after a finished one
                restart = done[t - 1].bool()[:, None, None]
                state = NetState(*(torch.where(restart, new, old) for new, old in zip(fresh, state)))
            out = self.step(obs[t], active[t], state, symbols=None if symbols is None else symbols[t])
            state = out.state
            log_probs.append(out.log_probs)
            baselines.append(out.baseline)
            taken = out.log_probs.gather(-1, actions[t].unsqueeze(-1)).squeeze(-1)
            chosen.append(taken + out.symbol_log_prob)
            norms.append(out.message_norm)
            abs_values.append(out.message_abs)
        return Unrolled(
            torch.stack(log_probs),
            torch.stack(baselines),
            torch.stack(chosen),
            torch.stack(norms).mean(),
            torch.stack(abs_values).mean(),
        )
