"""The SAC actor's log-probability: the tanh-squashed Gaussian's, exact even where tanh saturates."""

import math

import torch

from glassnet.data.environments import load_environment
from glassnet.models import create_model
from glassnet.models.policies import LOG_STD_MAX, LOG_STD_MIN


def test_the_log_probability_is_the_squashed_gaussians():
    agent = create_model("sac_agent", load_environment("Pendulum-v1").spec)  # torques in [-2, 2]
    observations = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    actions, log_prob = agent.sample(observations, torch.Generator().manual_seed(1))
    features = agent._features(observations)
    std = agent.log_std(features).clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
    squashed = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(agent.mean(features), std),
        [torch.distributions.TanhTransform(), torch.distributions.AffineTransform(agent.bias, agent.scale)],
    )
    assert torch.allclose(log_prob, squashed.log_prob(actions).sum(-1), atol=1e-4)


def test_a_saturated_action_keeps_its_exact_log_probability():
    agent = create_model("sac_agent", load_environment("Pendulum-v1").spec)
    count, mean = 8, 9.0  # tanh(9) rounds to 1 in float32: 1 - tanh^2 is 6e-8, below any epsilon floor
    with torch.no_grad():  # the heads answer constants: the mean 9, the smallest spread
        for head, value in ((agent.mean, mean), (agent.log_std, LOG_STD_MIN)):
            head.weight.zero_()
            head.bias.fill_(value)
    noise = torch.randn(count, 1, generator=torch.Generator().manual_seed(2))
    _, log_prob = agent.sample(torch.zeros(count, 3), torch.Generator().manual_seed(2))
    raw = mean + math.exp(LOG_STD_MIN) * noise.double()
    gaussian = -0.5 * noise.double().pow(2) - LOG_STD_MIN - 0.5 * math.log(2 * math.pi)
    expected = gaussian - math.log(2.0) - torch.log(1 - torch.tanh(raw).pow(2))  # float64: exact enough
    assert torch.allclose(log_prob.double(), expected.sum(-1), rtol=1e-4)
