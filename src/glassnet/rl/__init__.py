"""Deep reinforcement learning on glassnet's one training loop: agents that learn from environments.

Each algorithm is one module, readable top to bottom, and a registered training step: ``ppo``
(``glassnet.rl.ppo``), ``dqn`` (``glassnet.rl.dqn``) and ``sac`` (``glassnet.rl.sac``). They play
environments through the ``Rollouts`` batch source, keep their state (optimisers, replay buffer,
target networks, random generators) in the trainer's checkpoints, and are scored by the ``control``
task: seeded episodes of the deterministic policy.
"""

from glassnet.rl import dqn as _dqn  # noqa: F401  (registers "dqn")
from glassnet.rl import ppo as _ppo  # noqa: F401  (registers "ppo")
from glassnet.rl import sac as _sac  # noqa: F401  (registers "sac")
from glassnet.rl import task as _task  # noqa: F401  (registers the "control" task)
from glassnet.rl.evaluation import evaluate_policy, render_episode
from glassnet.rl.replay import ReplayBuffer
from glassnet.rl.rollouts import Rollouts

__all__ = ["ReplayBuffer", "Rollouts", "evaluate_policy", "render_episode"]
