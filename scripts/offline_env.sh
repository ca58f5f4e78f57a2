# Sourced by the GPU scripts: pick the Python, and make Hydra importable on a machine without a network
# by installing the wheels carried in wheels/ (made by `make wheels` on a machine with one).
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c "import hydra, omegaconf" 2>/dev/null; then
    if ! ls wheels/*.whl >/dev/null 2>&1; then
        echo "error: hydra-core is not installed and no wheels/*.whl were carried; run 'make wheels' where pip" \
             "reaches PyPI and carry wheels/ along" >&2
        exit 2
    fi
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/cpvt_site wheels/*.whl || exit 2
    export PYTHONPATH=/tmp/cpvt_site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
