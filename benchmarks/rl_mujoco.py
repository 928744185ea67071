"""PPO on a MuJoCo task (HalfCheetah-v5 by default): glassnet against Stable-Baselines3 at equal steps.

    nice -n 10 .venv/bin/python benchmarks/rl_mujoco.py [--env HalfCheetah-v5] [--seeds 0] [--steps 200000] \
        [--episodes 20] [--threads 1]

Settings: the RL Zoo's PPO entry for the task's v4 version (HalfCheetah-v4 or Hopper-v4), tuned for
1M steps, run here at a smaller budget for both libraries. HalfCheetah: one environment, n_steps
512, batch 64 (8 minibatches), 20 epochs, gamma 0.98, GAE lambda 0.92, learning rate 2.0633e-5
(constant), clip range 0.1 (constant), entropy 4.01762e-4, value loss 0.58096, gradient norm 0.8,
no value clipping, 256x256 ReLU actor and critic with log_std_init -2 (SB3: ortho_init=False),
and ``normalize: true``: SB3 wraps the environment in VecNormalize (observations and rewards, the
reward's discount the PPO gamma, clipped to +-10), glassnet normalises observations in the model
(model normalize=true, clipped to +-10) and scales rewards by the running std of the discounted
return (step normalize_reward=true). Hopper-v5 takes the Zoo's Hopper-v4 entry the same way.

Known differences that remain: glassnet's actor_critic always uses orthogonal initialisation (SB3
here: PyTorch's default), glassnet does not clip normalised rewards, and glassnet updates the
observation statistics after each update from the rollout (VecNormalize at every step). Goal:
glassnet reaches SB3's return at equal steps. Evaluation: 20 episodes (seeds 20000-20019,
deterministic policy, the same episodes for both libraries; SB3 normalises the observations with
its frozen VecNormalize statistics).

Every contender trains once per seed in this process (order alternating from seed to seed); the
table gives wall and CPU seconds of the training call, environment steps and gradient updates per
second, the evaluation return and the ratios glassnet / SB3 (what is timed and how each library is
evaluated: rl_common.py). Results: benchmarks/results/rl_mujoco.txt and .json. Needs
``pip install stable-baselines3 mujoco``.
"""

from __future__ import annotations

from typing import Any

from rl_common import Report, compare, glassnet_run, means, parser, sb3_run, setup

# the Zoo's hyperparams/ppo.yml entries HalfCheetah-v4 and Hopper-v4
ZOO: dict[str, dict[str, Any]] = {
    "HalfCheetah-v5": dict(
        batch_size=64,
        n_steps=512,
        gamma=0.98,
        learning_rate=2.0633e-05,
        ent_coef=0.000401762,
        clip_range=0.1,
        n_epochs=20,
        gae_lambda=0.92,
        max_grad_norm=0.8,
        vf_coef=0.58096,
    ),
    "Hopper-v5": dict(
        batch_size=32,
        n_steps=512,
        gamma=0.999,
        learning_rate=9.80828e-05,
        ent_coef=0.00229519,
        clip_range=0.2,
        n_epochs=5,
        gae_lambda=0.99,
        max_grad_norm=0.7,
        vf_coef=0.835671,
    ),
}


def sb3_settings(env: str) -> dict[str, Any]:
    from torch import nn

    return {
        **ZOO[env],
        "policy_kwargs": dict(
            log_std_init=-2, ortho_init=False, activation_fn=nn.ReLU, net_arch=dict(pi=[256, 256], vf=[256, 256])
        ),
    }


def glassnet_settings(env: str) -> tuple[dict[str, Any], dict[str, Any]]:
    z = ZOO[env]
    step = {
        "name": "ppo",
        "n_envs": 1,
        "n_steps": z["n_steps"],
        "minibatches": z["n_steps"] // z["batch_size"],
        "epochs": z["n_epochs"],
        "gamma": z["gamma"],
        "gae_lambda": z["gae_lambda"],
        "lr": z["learning_rate"],
        "anneal_lr": False,
        "clip": z["clip_range"],
        "anneal_clip": False,
        "clip_value": False,
        "entropy": z["ent_coef"],
        "value_coef": z["vf_coef"],
        "max_grad_norm": z["max_grad_norm"],
        "normalize_reward": True,
    }
    model = {"hidden": 256, "depth": 2, "activation": "relu", "normalize": True, "log_std_init": -2.0}
    return step, model


def main() -> None:
    made = parser(__doc__, seeds=(0,), steps=200_000, episodes=20)
    made.add_argument("--env", choices=sorted(ZOO), default="HalfCheetah-v5", help="the MuJoCo task (HalfCheetah-v5)")
    args = made.parse_args()
    setup(args, "rl_mujoco.py")
    report = Report("rl_mujoco", args)
    report.header("rl_mujoco.py")
    env = args.env
    step, model = glassnet_settings(env)
    contenders = {}
    if args.only != "glassnet":
        normalize = {"gamma": ZOO[env]["gamma"]}  # the Zoo: normalize: true, with the PPO's gamma
        contenders["SB3 PPO"] = lambda s: sb3_run(
            "ppo", env, 1, sb3_settings(env), args.steps, s, args, normalize=normalize
        )
    if args.only != "sb3":
        contenders["glassnet PPO"] = lambda s: glassnet_run(env, step, model, args.steps, s, args)
    runs = compare(report, f"PPO {env}, {args.steps} env steps, RL Zoo v4 settings", contenders, args.seeds)
    report.say()
    if "glassnet PPO" in runs and "SB3 PPO" in runs:
        g, s = means(runs["glassnet PPO"]), means(runs["SB3 PPO"])
        gr = means(runs["glassnet PPO"], "returned")
        mean_g, mean_r, mean_s = sum(g) / len(g), sum(gr) / len(gr), sum(s) / len(s)
        verdict = "met" if mean_g >= mean_s else "NOT met"
        report.say(
            f"goal glassnet reaches SB3's return at equal steps: final weights {mean_g:.1f} vs SB3 {mean_s:.1f} "
            f"-> {verdict} (returned weights {mean_r:.1f})"
        )
    report.save()


if __name__ == "__main__":
    main()
