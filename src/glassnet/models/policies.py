"""Policies and value functions of reinforcement-learning agents, built from a ``control`` ``DataSpec``.

Three families, each one ``nn.Module`` that holds everything its algorithm learns, so a run saves
and loads it like any model (model.json + safetensors) and the audit stages see one network:

- ``actor_critic`` (PPO): a policy head (logits of discrete actions, or the mean of a Gaussian with
  a learned, state-independent standard deviation) and a value head, on an MLP (vector
  observations) or the Nature-DQN convolutions (stacked frames).
- ``q_network`` (DQN): action values, optionally dueling (value + advantage streams).
- ``sac_agent`` (SAC): a tanh-squashed Gaussian actor, twin Q critics, their target copies and the
  entropy temperature ``log_alpha``.

``forward(observations)`` is the decision each family makes in one tensor (logits or Q-values per
action; the action itself for continuous control), which is what ``explain``, ``attack`` and
``compress`` act on; ``act(observations, deterministic, generator)`` turns it into actions.
Vector observations are normalised by ``RunningNorm``, whose statistics the training step updates
and which are saved with the weights, so the saved policy needs nothing else to act.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.layers import check_positive, make_activation
from glassnet.models.registry import register_model

MODALITIES = ("tabular", "image")
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class RunningNorm(nn.Module):
    """``(x - mean) / sqrt(var)``, clipped to +-``clip``, with statistics of every observation seen so far.

    ``update`` merges a batch into the statistics (Chan et al.'s parallel variance); the training
    step calls it, so evaluation and the saved policy use fixed statistics.
    """

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("var", torch.ones(shape))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))
        self.register_buffer("inv_std", torch.ones(shape))  # 1 / sqrt(var + 1e-8), kept with the statistics

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, *self.mean.shape).double()
        count = x.shape[0]
        if count == 0:
            return
        batch_mean, batch_var = x.mean(dim=0), x.var(dim=0, unbiased=False)
        total = self.count + count
        delta = batch_mean - self.mean.double()
        mean = self.mean.double() + delta * count / total
        m2 = self.var.double() * self.count + batch_var * count + delta.pow(2) * self.count * count / total
        self.mean.copy_(mean.float())
        self.var.copy_((m2 / total).float())
        self.count.copy_(total)
        self.inv_std.copy_(torch.rsqrt(self.var + 1e-8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) * self.inv_std).clamp(-self.clip, self.clip)


def _layer(inputs: int, outputs: int, gain: float = math.sqrt(2)) -> nn.Linear:
    """A linear layer with orthogonal weights and zero bias (the initialisation PPO is tuned for)."""
    layer = nn.Linear(inputs, outputs)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(inputs: int, hidden: int, depth: int, activation: str, orthogonal: bool) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    features = inputs
    for _ in range(depth):
        layers += [_layer(features, hidden) if orthogonal else nn.Linear(features, hidden), make_activation(activation)]
        features = hidden
    return nn.Sequential(*layers), features


def _nature_cnn(channels: int, size: tuple[int, int]) -> tuple[nn.Sequential, int]:
    """The convolutions of Mnih et al. (2015) for stacked 84 x 84 frames, and a 512-unit layer."""
    convs = nn.Sequential(
        nn.Conv2d(channels, 32, 8, stride=4), nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
        nn.Flatten(),
    )  # fmt: skip
    with torch.no_grad():
        flat = convs(torch.zeros(1, channels, *size)).shape[1]
    return nn.Sequential(convs, nn.Linear(flat, 512), nn.ReLU()), 512


def _action(spec: DataSpec) -> dict[str, Any]:
    action = spec.extra.get("action")
    if not isinstance(action, dict) or action.get("kind") not in ("discrete", "continuous"):
        raise ConfigError("a policy needs a control spec from an environment (spec.extra['action'])")
    return action


class _Observations(nn.Module):
    """Normalises vector observations (running statistics) or passes frames (already in [0, 1]) through."""

    def __init__(self, spec: DataSpec, normalize: bool) -> None:
        super().__init__()
        self.image = spec.modality == "image"
        self.norm = RunningNorm(spec.input_shape) if normalize and not self.image else None

    def update(self, observations: torch.Tensor) -> None:
        if self.norm is not None:
            self.norm.update(observations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.norm is not None:
            x = self.norm(x)
        return x if self.image else x.flatten(1)


def _encoder(spec: DataSpec, hidden: int, depth: int, activation: str, orthogonal: bool) -> tuple[nn.Module, int]:
    if spec.modality == "image":
        channels, height, width = spec.input_shape
        return _nature_cnn(channels, (height, width))
    return _mlp(math.prod(spec.input_shape), hidden, depth, activation, orthogonal)


class ActorCritic(nn.Module):
    """A policy and a value function (separate MLPs for vectors, one shared CNN for frames)."""

    def __init__(
        self, spec: DataSpec, hidden: int, depth: int, activation: str, normalize: bool, log_std_init: float
    ) -> None:
        super().__init__()
        action = _action(spec)
        self.continuous = action["kind"] == "continuous"
        self.observations = _Observations(spec, normalize)
        self.actor_body, features = _encoder(spec, hidden, depth, activation, orthogonal=True)
        if spec.modality == "image":  # frames: one encoder feeds both heads, as in Atari PPO
            self.critic_body = None
        else:
            self.critic_body, _ = _encoder(spec, hidden, depth, activation, orthogonal=True)
        self.actor = _layer(features, spec.num_outputs, gain=0.01)
        self.critic = _layer(features, 1, gain=1.0)
        if self.continuous:
            self.log_std = nn.Parameter(torch.full((spec.num_outputs,), float(log_std_init)))
            self.register_buffer("low", torch.tensor(action["low"], dtype=torch.float32))
            self.register_buffer("high", torch.tensor(action["high"], dtype=torch.float32))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Logits of the discrete actions, or the mean action of the Gaussian policy."""
        return self.actor(self.actor_body(self.observations(observations)))

    def value(self, observations: torch.Tensor) -> torch.Tensor:
        x = self.observations(observations)
        body = self.critic_body if self.critic_body is not None else self.actor_body
        return self.critic(body(x)).squeeze(-1)

    def heads(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The policy's output (as ``forward``) and the state value, normalising the observations once."""
        x = self.observations(observations)
        features = self.actor_body(x)
        critic = features if self.critic_body is None else self.critic_body(x)
        return self.actor(features), self.critic(critic).squeeze(-1)

    def distribution(self, observations: torch.Tensor) -> torch.distributions.Distribution:
        out = self(observations)
        if self.continuous:
            return torch.distributions.Normal(out, self.log_std.exp().expand_as(out))
        return torch.distributions.Categorical(logits=out)

    def log_prob_entropy(
        self, out: torch.Tensor, actions: torch.Tensor, entropy: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of ``actions`` and the entropy of the policy whose output is ``out`` (the
        closed forms of ``distribution``'s, without building distribution objects in the update loop);
        ``entropy=False`` computes the entropy outside the autograd graph."""
        if self.continuous:
            log_std = self.log_std.expand_as(out)
            log_prob = -((actions - out) ** 2) / (2 * torch.exp(2 * log_std)) - log_std - _HALF_LOG_2PI
            with torch.set_grad_enabled(entropy and torch.is_grad_enabled()):
                spread = (0.5 + _HALF_LOG_2PI + self.log_std).sum().expand(len(out))
            return log_prob.sum(dim=-1), spread
        log_p = out.log_softmax(dim=-1)
        with torch.set_grad_enabled(entropy and torch.is_grad_enabled()):
            spread = -(log_p.exp() * log_p).sum(dim=-1)
        return log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1), spread

    def act(
        self, observations: torch.Tensor, deterministic: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Actions: the most likely (deterministic) or drawn with ``generator`` (continuous: within bounds)."""
        out = self(observations)
        if not self.continuous:
            if deterministic:
                return out.argmax(dim=-1)
            probabilities = out.softmax(dim=-1).cpu()
            return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1).to(out.device)
        if not deterministic:
            noise = torch.randn(out.shape, generator=generator).to(out.device)
            out = out + noise * self.log_std.exp()
        return torch.maximum(torch.minimum(out, self.high), self.low)

    def update_statistics(self, observations: torch.Tensor) -> None:
        self.observations.update(observations)


class QNetwork(nn.Module):
    """Action values Q(s, .) of discrete actions; dueling: V(s) + A(s, .) - mean A(s, .)."""

    def __init__(self, spec: DataSpec, hidden: int, depth: int, activation: str, normalize: bool, dueling: bool):
        super().__init__()
        self.observations = _Observations(spec, normalize)
        self.body, features = _encoder(spec, hidden, depth, activation, orthogonal=False)
        self.dueling = dueling
        self.advantage = nn.Linear(features, spec.num_outputs)
        self.state_value = nn.Linear(features, 1) if dueling else None

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        h = self.body(self.observations(observations))
        advantage = self.advantage(h)
        if self.state_value is None:
            return advantage
        return self.state_value(h) + advantage - advantage.mean(dim=-1, keepdim=True)

    def act(
        self, observations: torch.Tensor, deterministic: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self(observations).argmax(dim=-1)

    def update_statistics(self, observations: torch.Tensor) -> None:
        self.observations.update(observations)


class SACAgent(nn.Module):
    """A tanh-squashed Gaussian actor, twin Q critics with target copies, and the temperature ``log_alpha``."""

    def __init__(self, spec: DataSpec, hidden: int, depth: int, activation: str, normalize: bool) -> None:
        super().__init__()
        action = _action(spec)
        dim = spec.num_outputs
        self.observations = _Observations(spec, normalize)
        body, features = _encoder(spec, hidden, depth, activation, orthogonal=False)
        self.actor_body, self.mean, self.log_std = body, nn.Linear(features, dim), nn.Linear(features, dim)
        inputs = (features if spec.modality == "image" else math.prod(spec.input_shape)) + dim
        self.q1, self.q2 = (
            self._critic(inputs, hidden, depth, activation),
            self._critic(inputs, hidden, depth, activation),
        )
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        for parameter in (*self.q1_target.parameters(), *self.q2_target.parameters()):
            parameter.requires_grad_(False)
        self.critic_encoder = None
        if spec.modality == "image":  # frames: the critics read the actor's features, detached
            self.critic_encoder = self.actor_body
        self.log_alpha = nn.Parameter(torch.zeros(()))
        low, high = torch.tensor(action["low"]), torch.tensor(action["high"])
        self.register_buffer("scale", ((high - low) / 2).float())
        self.register_buffer("bias", ((high + low) / 2).float())

    @staticmethod
    def _critic(inputs: int, hidden: int, depth: int, activation: str) -> nn.Sequential:
        body, features = _mlp(inputs, hidden, depth, activation, orthogonal=False)
        return nn.Sequential(*body, nn.Linear(features, 1))

    def _features(self, observations: torch.Tensor) -> torch.Tensor:
        return self.actor_body(self.observations(observations))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """The deterministic action: the squashed mean, in the environment's bounds."""
        return torch.tanh(self.mean(self._features(observations))) * self.scale + self.bias

    def sample(
        self, observations: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action and its log-probability (with the tanh correction)."""
        h = self._features(observations)
        mean, log_std = self.mean(h), self.log_std(h).clamp(LOG_STD_MIN, LOG_STD_MAX)
        std = log_std.exp()
        noise = torch.randn(mean.shape, generator=generator).to(mean.device)
        raw = mean + std * noise
        log_prob = torch.distributions.Normal(mean, std).log_prob(raw)
        # log |d action / d raw| = log scale + log(1 - tanh(raw)^2), in a form exact where tanh saturates
        log_prob = log_prob - (2 * (math.log(2) - raw - F.softplus(-2 * raw)) + torch.log(self.scale))
        return torch.tanh(raw) * self.scale + self.bias, log_prob.sum(dim=-1)

    def critic_inputs(self, observations: torch.Tensor) -> torch.Tensor:
        if self.critic_encoder is not None:
            return self.critic_encoder(self.observations(observations)).detach()
        return self.observations(observations).flatten(1)

    def q_values(self, observations: torch.Tensor, actions: torch.Tensor, target: bool = False) -> tuple:
        x = torch.cat([self.critic_inputs(observations), (actions - self.bias) / self.scale], dim=-1)
        first, second = (self.q1_target, self.q2_target) if target else (self.q1, self.q2)
        return first(x).squeeze(-1), second(x).squeeze(-1)

    @torch.no_grad()
    def update_targets(self, tau: float) -> None:
        for online, target in ((self.q1, self.q1_target), (self.q2, self.q2_target)):
            for p, t in zip(online.parameters(), target.parameters()):
                t.lerp_(p, tau)

    def act(
        self, observations: torch.Tensor, deterministic: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if deterministic:
            return self(observations)
        return self.sample(observations, generator)[0]

    def update_statistics(self, observations: torch.Tensor) -> None:
        self.observations.update(observations)


def _check(hidden: int, depth: int) -> None:
    check_positive("hidden", hidden)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ConfigError(f"depth must be an integer >= 1. Received: depth={depth!r}")


@register_model(
    "actor_critic",
    modalities=MODALITIES,
    tasks=("control",),
    description="policy and value networks for PPO: MLPs for vectors, Nature CNN for frames",
)
def actor_critic(
    spec: DataSpec,
    hidden: int = 64,
    depth: int = 2,
    activation: str = "tanh",
    normalize: bool = True,
    log_std_init: float = 0.0,
) -> nn.Module:
    """Actor-critic for discrete or continuous actions.

    Args:
        spec: a control spec (``glassnet.data.environments.load_environment``).
        hidden, depth, activation: the MLPs of vector observations (frames use the Nature CNN).
        normalize: standardise vector observations with running statistics.
        log_std_init: the Gaussian policy's initial log standard deviation (continuous actions).
    """
    _check(hidden, depth)
    return ActorCritic(spec, hidden, depth, activation, normalize, log_std_init)


@register_model(
    "q_network",
    modalities=MODALITIES,
    tasks=("control",),
    description="action values for DQN (discrete actions), dueling by default",
)
def q_network(
    spec: DataSpec,
    hidden: int = 256,
    depth: int = 2,
    activation: str = "relu",
    normalize: bool = False,
    dueling: bool = True,
) -> nn.Module:
    """Q-network of discrete actions.

    Raises:
        ConfigError: the environment's actions are continuous (DQN needs discrete actions).
    """
    _check(hidden, depth)
    if _action(spec)["kind"] != "discrete":
        raise ConfigError(
            f"q_network (DQN) needs discrete actions; {spec.name} has continuous ones: use --algo ppo or --algo sac"
        )
    return QNetwork(spec, hidden, depth, activation, normalize, dueling)


@register_model(
    "sac_agent",
    modalities=MODALITIES,
    tasks=("control",),
    description="squashed-Gaussian actor, twin critics and temperature for SAC (continuous actions)",
)
def sac_agent(
    spec: DataSpec, hidden: int = 256, depth: int = 2, activation: str = "relu", normalize: bool = False
) -> nn.Module:
    """Soft actor-critic networks.

    Raises:
        ConfigError: the environment's actions are discrete (SAC here is for continuous actions).
    """
    _check(hidden, depth)
    if _action(spec)["kind"] != "continuous":
        raise ConfigError(
            f"sac_agent (SAC) needs continuous actions; {spec.name} has discrete ones: use --algo ppo or --algo dqn"
        )
    return SACAgent(spec, hidden, depth, activation, normalize)


def soft_update(model: nn.Module, target: nn.Module, tau: float) -> None:
    """``target <- (1 - tau) target + tau model`` over parameters and buffers (``tau`` = 1: an exact copy)."""
    with torch.no_grad():
        for t, s in zip(target.state_dict().values(), model.state_dict().values()):
            if tau < 1 and t.is_floating_point():
                t.lerp_(s, tau)
            else:
                t.copy_(s)


class ValueHead(nn.Module):
    """The state value a policy network estimates, as a ``B x 1`` output (what ``explain`` attributes):
    the critic of ``actor_critic``, the best action's Q of ``q_network``, and for ``sac_agent`` the
    smaller of the twin Qs at the action the policy takes."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        if not isinstance(policy, (ActorCritic, QNetwork, SACAgent)):
            raise ConfigError(f"{type(policy).__name__} is not a policy network with a value estimate")
        self.policy = policy

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        policy = self.policy
        if isinstance(policy, ActorCritic):
            return policy.value(observations).unsqueeze(-1)
        if isinstance(policy, QNetwork):
            return policy(observations).amax(dim=-1, keepdim=True)
        first, second = policy.q_values(observations, policy(observations))
        return torch.min(first, second).unsqueeze(-1)
