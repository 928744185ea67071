"""PPO on LunarLander-v3: glassnet against Stable-Baselines3 with the RL Zoo's settings, 1M steps.

    nice -n 10 .venv/bin/python benchmarks/rl_lunarlander.py [--seeds 0] [--steps 1000000] [--episodes 20] [--threads 1]

The Zoo's LunarLander-v3 entry: 16 environments, n_steps 1024, batch 64 (256 minibatches of the
16,384-step rollout), 4 epochs, gamma 0.999, GAE lambda 0.98, entropy 0.01; SB3's PPO defaults
otherwise (learning rate 3e-4 and clip range 0.2, both constant; value loss 0.5; gradient norm
0.5; no value clipping; 64x64 tanh actor and critic; no observation normalisation), the same in
glassnet (anneal_lr=false, clip_value=false, model normalize=false). 1M environment steps are 62
iterations (1,015,808 steps, 63,488 updates) in both libraries. Issue target: >= 200 over the
evaluation episodes (20 by default: seeds 20000-20019, deterministic policy, the same episodes for
both libraries).

Long: several minutes per training per library on two cores; ``--seeds`` and ``--steps`` size it.
Every contender trains once per seed in this process (order alternating from seed to seed); the
table gives wall and CPU seconds of the training call, environment steps and gradient updates per
second, the evaluation return and the ratios glassnet / SB3 (what is timed and how each library is
evaluated: rl_common.py). Results: benchmarks/results/rl_lunarlander.txt and .json. Needs
``pip install stable-baselines3 box2d``.
"""

from __future__ import annotations

from rl_common import Report, check, compare, glassnet_run, means, parser, sb3_run, setup

ENV = "LunarLander-v3"

PPO_SB3 = dict(
    n_steps=1024,
    batch_size=64,
    gae_lambda=0.98,
    gamma=0.999,
    n_epochs=4,
    ent_coef=0.01,
)
PPO_GLASSNET = {
    "name": "ppo",
    "n_envs": 16,
    "n_steps": 1024,
    "minibatches": 256,  # 16 x 1024 / 64
    "epochs": 4,
    "gamma": 0.999,
    "gae_lambda": 0.98,
    "lr": 3e-4,
    "anneal_lr": False,
    "clip": 0.2,
    "anneal_clip": False,
    "clip_value": False,
    "entropy": 0.01,
    "value_coef": 0.5,
    "max_grad_norm": 0.5,
}
PPO_MODEL = {"hidden": 64, "depth": 2, "activation": "tanh", "normalize": False}


def main() -> None:
    args = parser(__doc__, seeds=(0,), steps=1_000_000, episodes=20).parse_args()
    setup(args, "rl_lunarlander.py")
    report = Report("rl_lunarlander", args)
    report.header("rl_lunarlander.py")
    contenders = {}
    if args.only != "glassnet":
        contenders["SB3 PPO"] = lambda s: sb3_run("ppo", ENV, 16, PPO_SB3, args.steps, s, args)
    if args.only != "sb3":
        contenders["glassnet PPO"] = lambda s: glassnet_run(ENV, PPO_GLASSNET, PPO_MODEL, args.steps, s, args)
    runs = compare(report, f"PPO {ENV}, {args.steps} env steps, RL Zoo settings", contenders, args.seeds)
    report.say()
    if "glassnet PPO" in runs:
        check(report, "PPO glassnet, returned weights, worst seed", min(means(runs["glassnet PPO"], "returned")), 200)
        check(report, "PPO glassnet, final weights, worst seed", min(means(runs["glassnet PPO"], "final")), 200)
    if "SB3 PPO" in runs:
        report.say(f"(SB3 PPO worst seed: {min(means(runs['SB3 PPO'])):.1f})")
    report.save()


if __name__ == "__main__":
    main()
