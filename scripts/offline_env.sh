# Sourced by the GPU scripts: pick the Python, and install from the carried wheels/ (made by
# `make gpu-carry` on a machine that reaches PyPI) what this machine lacks. The install goes to
# /tmp/cpvt_site, first on PYTHONPATH, so it also wins over an incompatible copy already there.
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
SITE=/tmp/cpvt_site
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
# "imports that must work = wheels that provide them" (omegaconf needs antlr4 4.9 exactly,
# which only the import of omegaconf itself checks)
for need in "hydra,omegaconf=hydra_core omegaconf antlr4_python3_runtime" "tabulate=tabulate" "scipy.stats=scipy" \
            "pytest=pytest iniconfig pluggy"; do
    modules=${need%%=*} wheels=${need#*=}
    "$PYTHON" -c "import ${modules//,/, }" 2>/dev/null && continue
    files=()
    for wheel in $wheels; do
        if ! ls wheels/"$wheel"-*.whl >/dev/null 2>&1; then
            echo "error: ${modules//,/ and } cannot be imported and wheels/$wheel-*.whl was not carried;" \
                 "run 'make gpu-carry' where pip reaches PyPI and carry wheels/ along" >&2
            exit 2
        fi
        files+=(wheels/"$wheel"-*.whl)
    done
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "${files[@]}" || exit 2
done
export PYTHONUNBUFFERED=1
