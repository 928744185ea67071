"""SAC on Pendulum-v1: glassnet against Stable-Baselines3 with the RL Zoo's settings.

    nice -n 10 .venv/bin/python benchmarks/rl_pendulum.py [--seeds 0 1 2] [--steps 20000] [--episodes 100] [--threads 1]

The Zoo's Pendulum-v1 entry sets only the learning rate (1e-3, all three optimisers); the rest is
SB3's SAC default, and glassnet's SAC defaults are the same: one environment, buffer 1e6, batch 256,
learning starts 100 (uniformly random actions before), tau 0.005, gamma 0.99, train_freq 1 with one
gradient step, entropy temperature tuned automatically (initial 1, target -1), 256x256 ReLU actor
and twin critics, no observation normalisation. Budget 20k environment steps (about 19,900 updates);
issue target: >= -200 over 100 evaluation episodes (seeds 20000-20099, deterministic policy, the
same episodes for both libraries).

Every contender trains once per seed in this process (order alternating from seed to seed); the
table gives wall and CPU seconds of the training call, environment steps and gradient updates per
second, the evaluation return and the ratios glassnet / SB3 (what is timed and how each library is
evaluated: rl_common.py). Results: benchmarks/results/rl_pendulum.txt and .json. Needs
``pip install stable-baselines3``.
"""

from __future__ import annotations

from rl_common import Report, check, compare, glassnet_run, means, parser, sb3_run, setup

ENV = "Pendulum-v1"

SAC_SB3 = dict(
    learning_rate=1e-3,
    buffer_size=1_000_000,
    batch_size=256,
    learning_starts=100,
    tau=0.005,
    gamma=0.99,
    train_freq=1,
    gradient_steps=1,
    ent_coef="auto",
    policy_kwargs=dict(net_arch=[256, 256]),
)
SAC_GLASSNET = {
    "name": "sac",
    "n_envs": 1,
    "lr": 1e-3,
    "buffer_size": 1_000_000,
    "batch_size": 256,
    "learning_starts": 100,
    "tau": 0.005,
    "gamma": 0.99,
    "train_freq": 1,
    "gradient_steps": 1,
    "alpha": "auto",
    "initial_alpha": 1.0,
    "target_update_interval": 1,
}
SAC_MODEL = {"hidden": 256, "depth": 2, "activation": "relu", "normalize": False}


def main() -> None:
    args = parser(__doc__, seeds=(0, 1, 2), steps=20_000, episodes=100).parse_args()
    setup(args, "rl_pendulum.py")
    report = Report("rl_pendulum", args)
    report.header("rl_pendulum.py")
    contenders = {}
    if args.only != "glassnet":
        contenders["SB3 SAC"] = lambda s: sb3_run("sac", ENV, 1, SAC_SB3, args.steps, s, args)
    if args.only != "sb3":
        contenders["glassnet SAC"] = lambda s: glassnet_run(ENV, SAC_GLASSNET, SAC_MODEL, args.steps, s, args)
    runs = compare(report, f"SAC {ENV}, {args.steps} env steps, RL Zoo settings", contenders, args.seeds)
    report.say()
    if "glassnet SAC" in runs:
        check(report, "SAC glassnet, returned weights, worst seed", min(means(runs["glassnet SAC"], "returned")), -200)
        check(report, "SAC glassnet, final weights, worst seed", min(means(runs["glassnet SAC"], "final")), -200)
    if "SB3 SAC" in runs:
        report.say(f"(SB3 SAC worst seed: {min(means(runs['SB3 SAC'])):.1f})")
    report.save()


if __name__ == "__main__":
    main()
