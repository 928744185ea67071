"""PPO and DQN on CartPole-v1: glassnet against Stable-Baselines3 with the RL Zoo's tuned settings.

    nice -n 10 .venv/bin/python benchmarks/rl_cartpole.py [--seeds 0 1 2] [--steps 100000] [--dqn-steps 50000] \
        [--episodes 100] [--threads 1] [--skip dqn]

PPO (the Zoo's CartPole-v1 entry): 8 environments, n_steps 32, batch 256 (one minibatch), 20 epochs,
gamma 0.98, GAE lambda 0.8, learning rate 1e-3 and clip range 0.2 both annealed linearly to 0,
no entropy bonus; SB3's other defaults (value loss 0.5, gradient norm 0.5, no value clipping, 64x64
tanh actor and critic, no observation normalisation), the same in glassnet (clip_value=false,
model normalize=false). Budget 100k environment steps; issue target: >= 475 over 100 evaluation
episodes in at most 0.5x SB3's wall time.

DQN (the Zoo's entry): lr 2.3e-3, batch 64, buffer 100k, learning starts 1000, gamma 0.99,
target update every 10 steps, train_freq 256 with 128 gradient steps, epsilon 1 -> 0.04 over 16% of
the run, 256x256 ReLU network, Huber loss, gradient norm 10. SB3's DQN is neither double nor dueling:
glassnet runs it that way (double=false, dueling=false) and, as a second row, with its defaults
(double and dueling). Budget 50k environment steps; target: >= 475.

Every contender trains once per seed in this process (order alternating from seed to seed); the
table gives wall and CPU seconds of the training call, environment steps and gradient updates per
second, the evaluation return (100 episodes, seeds 20000-20099, deterministic policy, the same
episodes for both libraries) and the ratios glassnet / SB3. The shared machinery (what is timed,
how each library is evaluated) is described in rl_common.py. Results: benchmarks/results/rl_cartpole.txt
and .json. Needs ``pip install stable-baselines3``.
"""

from __future__ import annotations

from rl_common import Report, check, compare, glassnet_run, linear, means, parser, sb3_run, setup

ENV = "CartPole-v1"

PPO_SB3 = dict(
    n_steps=32,
    batch_size=256,
    gae_lambda=0.8,
    gamma=0.98,
    n_epochs=20,
    ent_coef=0.0,
    learning_rate=linear(1e-3),
    clip_range=linear(0.2),
)
PPO_GLASSNET = {
    "name": "ppo",
    "n_envs": 8,
    "n_steps": 32,
    "minibatches": 1,  # 8 x 32 / 256
    "epochs": 20,
    "gamma": 0.98,
    "gae_lambda": 0.8,
    "lr": 1e-3,
    "anneal_lr": True,
    "clip": 0.2,
    "anneal_clip": True,
    "clip_value": False,
    "entropy": 0.0,
    "value_coef": 0.5,
    "max_grad_norm": 0.5,
}
PPO_MODEL = {"hidden": 64, "depth": 2, "activation": "tanh", "normalize": False}

DQN_SB3 = dict(
    learning_rate=2.3e-3,
    batch_size=64,
    buffer_size=100_000,
    learning_starts=1000,
    gamma=0.99,
    target_update_interval=10,
    train_freq=256,
    gradient_steps=128,
    exploration_fraction=0.16,
    exploration_final_eps=0.04,
    policy_kwargs=dict(net_arch=[256, 256]),
)
DQN_GLASSNET = {
    "name": "dqn",
    "n_envs": 1,
    "lr": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "tau": 1.0,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_initial": 1.0,
    "exploration_final": 0.04,
    "max_grad_norm": 10.0,
    "loss": "huber",
    "n_step": 1,
}
DQN_MODEL = {"hidden": 256, "depth": 2, "activation": "relu", "normalize": False}


def main() -> None:
    made = parser(__doc__, seeds=(0, 1, 2), steps=100_000, episodes=100)
    made.add_argument("--dqn-steps", type=int, default=50_000, help="environment steps of each DQN training (50000)")
    made.add_argument("--skip", choices=("ppo", "dqn"), nargs="*", default=[], help="algorithms to leave out")
    args = made.parse_args()
    setup(args, "rl_cartpole.py")
    report = Report("rl_cartpole", args)
    report.header("rl_cartpole.py")

    if "ppo" not in args.skip:
        contenders = {}
        if args.only != "glassnet":
            contenders["SB3 PPO"] = lambda s: sb3_run("ppo", ENV, 8, PPO_SB3, args.steps, s, args)
        if args.only != "sb3":
            contenders["glassnet PPO"] = lambda s: glassnet_run(ENV, PPO_GLASSNET, PPO_MODEL, args.steps, s, args)
        runs = compare(report, f"PPO {ENV}, {args.steps} env steps, RL Zoo settings", contenders, args.seeds)
        report.say()
        if "glassnet PPO" in runs:
            g = runs["glassnet PPO"]
            check(report, "PPO glassnet, returned weights, worst seed", min(means(g, "returned")), 475)
            check(report, "PPO glassnet, final weights, worst seed", min(means(g, "final")), 475)
            if "SB3 PPO" in runs:
                s = runs["SB3 PPO"]
                wall = sum(r["wall_s"] for r in g) / sum(r["wall_s"] for r in s)
                cpu = sum(r["cpu_s"] for r in g) / sum(r["cpu_s"] for r in s)
                check(report, "PPO wall time glassnet / SB3 (all seeds)", wall, 0.5, higher=False, unit="x")
                report.say(f"(CPU time glassnet / SB3, all seeds: {cpu:.2f}x; SB3's worst seed: {min(means(s)):.1f})")

    if "dqn" not in args.skip:
        contenders = {}
        if args.only != "glassnet":
            contenders["SB3 DQN"] = lambda s: sb3_run("dqn", ENV, 1, DQN_SB3, args.dqn_steps, s, args)
        if args.only != "sb3":
            plain = {**DQN_GLASSNET, "double": False}
            contenders["glassnet DQN (as SB3)"] = lambda s: glassnet_run(
                ENV, plain, {**DQN_MODEL, "dueling": False}, args.dqn_steps, s, args
            )
            default = {**DQN_GLASSNET, "double": True}
            contenders["glassnet DQN double+duel"] = lambda s: glassnet_run(
                ENV, default, {**DQN_MODEL, "dueling": True}, args.dqn_steps, s, args
            )
        runs = compare(report, f"DQN {ENV}, {args.dqn_steps} env steps, RL Zoo settings", contenders, args.seeds)
        report.say()
        for name in ("glassnet DQN (as SB3)", "glassnet DQN double+duel"):
            if name in runs:
                check(report, f"{name}, returned weights, worst seed", min(means(runs[name], "returned")), 475)
                check(report, f"{name}, final weights, worst seed", min(means(runs[name], "final")), 475)
        if "SB3 DQN" in runs:
            report.say(f"(SB3 DQN worst seed: {min(means(runs['SB3 DQN'])):.1f})")
    report.save()


if __name__ == "__main__":
    main()
