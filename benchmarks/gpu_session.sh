#!/usr/bin/env bash
# The one prepared script to run when a GPU is lent (total under 9 minutes):
#
#     bash benchmarks/gpu_session.sh              # from the repository root; PYTHON=... to choose the interpreter
#
# 1. benchmarks/cuda_parity.py --device cuda: the goldens' tokens and decode_out (within 1e-3) on CUDA fp32;
# 2. benchmarks/bench_streaming.py --device cuda --precision fp16: time to first audio (goal < 150 ms);
# 3. benchmarks/bench_gpu.py --device cuda: the issue-12 benchmark (it saves after each configuration,
#    so a timeout keeps what was measured);
# 4. benchmarks/bench_training.py --device cuda: a real-size GPT (s1) training step (batch time, optimizer
#    step, peak memory) in 16-mixed, bf16-mixed and fp32, the batch size from the free memory.
# Each step runs under its own timeout; logs and JSON go to $OUT when set (the device machine's output
# folder), else benchmarks/results: 9 files (device.log, and a .log and a .json per step). Exits
# non-zero when any step failed or timed out.
#
# Needs there: the text frontend's packages (requirements.txt: pypinyin, jieba, cn2an, ...; carry them
# as wheels) and the reference folder at $GSV_REFERENCE_DIR (default ../shared/gsv-reference, which
# does not travel to the device machine). The benchmarks need only shapes/ and the tokenizer and
# config files of models/chinese-roberta-tiny (under 1 MB, not its model.safetensors); the parity
# check needs the tiny models, data/ and the cases, about 95 MB for all four cases (one s2 file is
# ~30 MB), so with a 64 MiB carry limit set PARITY_CASES to the cases whose files travelled
# (e.g. "v2ProPlus_zh").
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1  # the logs keep what was printed when a timeout stops a step
RESULTS=${OUT:-benchmarks/results}
mkdir -p "$RESULTS"
failed=0

step() {  # step <timeout s> <name> <script> <args...>
    local limit=$1 name=$2
    shift 2
    echo "== $name (timeout ${limit} s) $(date -u +%H:%M:%S)"
    timeout --kill-after=10 "$limit" "$PYTHON" "$@" --results "$RESULTS" 2>&1 | tee "$RESULTS/$name.log"
    local code=${PIPESTATUS[0]}
    echo "== $name exit code $code"
    [ "$code" -eq 0 ] || failed=1
}

"$PYTHON" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" 2>&1 | tee "$RESULTS/device.log"
step 75 cuda_parity benchmarks/cuda_parity.py --device cuda --cases ${PARITY_CASES:-v2_zh v2_zh_en_mixed v2Pro_zh v2ProPlus_zh}
step 75 bench_streaming benchmarks/bench_streaming.py --device cuda --precision fp16 --repeats 2
step 290 bench_gpu benchmarks/bench_gpu.py --device cuda
step 60 bench_training benchmarks/bench_training.py --device cuda --precision 16-mixed bf16-mixed 32
exit $failed
