"""PD-VF (Raileanu, Goldstein, Szlam, Fergus, ICML 2020): policy-dynamics value functions.

The networks and pure pieces of the pipeline: the set encoder and decoders of the dynamics and policy
embeddings (``embeddings``), the value W(s0, z_d, z_pi) = z_pi^T A z_pi and its maximiser (``value``),
and phase-2 minibatch mixing and return normalisation (``data``).
"""

from anew.agents.pdvf.data import (
    RETURN_BOUNDS,
    denormalise_returns,
    mix_counts,
    mix_minibatch,
    normalise_returns,
    reference_return,
)
from anew.agents.pdvf.embeddings import (
    DynamicsDecoder,
    PolicyDecoder,
    SetEncoder,
    behaviour_cloning_loss,
    dynamics_loss,
    dynamics_tokens,
    policy_tokens,
)
from anew.agents.pdvf.value import PDVFNetwork, optimal_policy_embedding, quadratic_value, value_loss

__all__ = [
    "RETURN_BOUNDS",
    "DynamicsDecoder",
    "PDVFNetwork",
    "PolicyDecoder",
    "SetEncoder",
    "behaviour_cloning_loss",
    "denormalise_returns",
    "dynamics_loss",
    "dynamics_tokens",
    "mix_counts",
    "mix_minibatch",
    "normalise_returns",
    "optimal_policy_embedding",
    "policy_tokens",
    "quadratic_value",
    "reference_return",
    "value_loss",
]
