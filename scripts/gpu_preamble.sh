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
