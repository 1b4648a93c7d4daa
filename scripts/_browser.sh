# Sourced by scripts/test.sh (not a command of its own): find Chromium for the one test that
# opens the report in a headless browser, or install it (apt-get, as root). With a browser,
# that test must run (LRKIT_REQUIRE_BROWSER=1); without one it is skipped, and this says why,
# unless the caller set LRKIT_REQUIRE_BROWSER=1 (CI, .ci/run): then the test fails.

_have_browser() {
  command -v chromium || command -v chromium-browser || command -v google-chrome
} >/dev/null 2>&1

_no_browser=""
if ! _have_browser; then
  if ! command -v apt-get >/dev/null 2>&1; then
    _no_browser="no apt-get here to install it with"
  elif [ "$(id -u)" != 0 ]; then
    _no_browser="installing it takes root (apt-get install chromium), and this is not root"
  else
    echo "test.sh: installing the chromium system package (apt-get) for the browser test"
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
          apt-get install -y -qq chromium >/dev/null); then
      _no_browser="apt-get could not install the chromium package"
    fi
  fi
fi
if _have_browser; then
  export LRKIT_REQUIRE_BROWSER=1   # found: the report's browser test must run, not skip
elif [ "${LRKIT_REQUIRE_BROWSER:-}" != 1 ]; then
  printf '%s\n' \
    "test.sh: NOTE: no Chromium browser found ($_no_browser)." \
    "  One check is skipped: tests/cli/test_compare.py::test_report_renders_in_headless_chromium" \
    "  (the report opened in a headless browser); every other test runs. To run it too," \
    "  install Chromium (Debian/Ubuntu: sudo apt-get install chromium) and run this again."
fi
