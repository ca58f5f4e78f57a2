# Sourced by the GPU scripts from the checkout's root, with NAME set: the job's output folder $OUT (default
# outputs/$NAME; point it at your job's scratch or results folder) with a log of
# everything printed ($OUT/$NAME.log), the carried wheels installed (scripts/offline_env.sh), ARCHIVE and
# data=(data.archive=...) when the archive was carried beside the checkout, and the device named.
OUT=${OUT:-outputs/$NAME}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/$NAME.log") 2>&1
source scripts/offline_env.sh
ARCHIVE=${ARCHIVE:-data_local/cifar10-jpeg.tar.gz}
data=(); [ -f "$ARCHIVE" ] && data=("data.archive=$ARCHIVE")
nvidia-smi -L 2>/dev/null || echo "no GPU: $(nproc) CPU cores"
"$PYTHON" -c "import torch, timm, pytorch_lightning as pl; print('torch', torch.__version__, 'timm', timm.__version__, 'lightning', pl.__version__)"
# torch.compile's caches (inductor's generated code, AOTAutograd's graphs, Triton's kernels) live in compile_cache/
# beside the checkout unless TORCHINDUCTOR_CACHE_DIR says where (a cluster's shared scratch). A job that finds the
# cache of an earlier job on the same kind of GPU, torch and Triton compiles in seconds what took a minute (a
# cache made elsewhere misses, never gives a wrong kernel, and the compile guard checks every compiled model
# anyway). On exit the cache is packed into $OUT/compile_cache.tar.gz: for a job on a fresh machine, unpack it
# into compile_cache/ and carry that folder along.
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$PWD/compile_cache}
pack_compile_cache() {
    [ -n "$(ls -A "$TORCHINDUCTOR_CACHE_DIR" 2>/dev/null)" ] || return 0
    tar czf "$OUT/compile_cache.tar.gz" -C "$TORCHINDUCTOR_CACHE_DIR" . \
        && echo "== compile cache packed into $OUT/compile_cache.tar.gz ($(du -h "$OUT/compile_cache.tar.gz" | cut -f1))"
}
trap pack_compile_cache EXIT
