#!/usr/bin/env bash
# GPU smoke run, under 8 minutes on one GPU: installs what the machine lacks from wheelhouse/
# (made here by bench/gpu_wheelhouse.sh), then
#   1. the CUDA tests (policies learning and reloading on cuda, the JAX VecEnvs' torch hand-over),
#   2. the JAX VecEnvs' throughput at 4096 envs (Craftax and Brax, against the raw jitted step),
#   3. a short ED-PPO run on Brax-HalfCheetah-v0 with the policy on the GPU: its env-steps/s.
# Each part has its own time limit, so one slow part cannot take the others' time; the figures
# land in ${OUT:-gpu_smoke}/gpu_smoke.txt (the device tool's $OUT comes back to this machine).
#
#     bash bench/gpu_wheelhouse.sh                                  # here, once
#     run --carry wheelhouse "bash bench/gpu_smoke.sh"              # on the GPU machine
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_smoke}"
mkdir -p "$out"
log="$out/gpu_smoke.txt"
say() { echo "== $*" | tee -a "$log"; }

say "$(date -u +%FT%TZ) $(nvidia-smi -L 2>/dev/null | head -1)"
# a venv over the machine's own packages (its torch and JAX); --no-deps: nothing installed here may
# replace them. The checkout itself is imported from the working tree (PYTHONPATH), not built.
"${PYTHON:-python3}" -m venv --system-site-packages /tmp/gpu_smoke_venv
python=/tmp/gpu_smoke_venv/bin/python
"$python" -m pip install -q --no-deps --no-index wheelhouse/*.whl 2>&1 | tail -3 | tee -a "$log"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$python" -c "import torch, jax, sb3_ed, sb3_ed.envs; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| jax', jax.__version__, jax.devices())" 2>&1 | tee -a "$log"

say "1. CUDA tests"
timeout 140 "$python" -m pytest -q -p no:cacheprovider tests/test_policies.py tests/test_envs.py -k "cuda or step_torch" 2>&1 | tail -4 | tee -a "$log"

say "2. VecEnv throughput, 4096 envs"
timeout 180 "$python" bench/env_throughput.py --num-envs 4096 --blocks 3 2>&1 | tail -4 | tee -a "$log"

say "3. ED-PPO on Brax-HalfCheetah-v0, policy on cuda, 4096 envs"
timeout 120 "$python" -m sb3_ed.train --algo ed_ppo --env Brax-HalfCheetah-v0 --device cuda -n 1048576 -f "$out/logs" \
    --eval-freq -1 --hyperparams n_envs:4096 n_steps:32 batch_size:16384 n_epochs:4 > "$out/brax_ed_ppo.log" 2>&1
echo "exit $? (124: stopped at its time limit, the figures below are from the updates it made)" | tee -a "$log"
grep -E "^\|    (fps|total_timesteps|ep_rew_mean) " "$out/brax_ed_ppo.log" | tail -3 | tee -a "$log"
say "done $(date -u +%FT%TZ)"
