# Sourced by run_local.sh and run_tests.sh (from the project root): creates
# .venv with python3.11 when it is missing and installs the package with its
# pinned stack and test tools. Later calls reuse the venv and reinstall only
# when setup.py has changed.

if ! command -v python3.11 >/dev/null 2>&1; then
  echo "error: python3.11 not found; the pinned TensorFlow stack needs Python 3.11" >&2
  exit 2
fi
VENV_DIR="${VENV_DIR:-$PWD/.venv}"
if [ ! -x "$VENV_DIR/bin/python" ]; then
  echo "Creating $VENV_DIR (python3.11)"
  python3.11 -m venv "$VENV_DIR"
fi
_stamp="$VENV_DIR/.tft-preprocessing-setup.sha256"
_wanted="$(sha256sum setup.py | cut -d' ' -f1)"
if [ "$(cat "$_stamp" 2>/dev/null)" != "$_wanted" ]; then
  echo "Installing tft-preprocessing and its pinned stack into $VENV_DIR"
  "$VENV_DIR/bin/python" -m pip install --quiet --upgrade "pip>=24" "setuptools>=70" wheel
  "$VENV_DIR/bin/python" -m pip install --quiet --editable ".[test]"
  echo "$_wanted" > "$_stamp"
fi
PYTHON="$VENV_DIR/bin/python"
