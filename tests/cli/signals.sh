# signals.sh -- SIGTERM/SIGINT stop a tool cleanly: exit 128+N, no output, no temporary file.
source "$(dirname "$0")/lib.sh"
for sig in TERM INT; do
  mkdir -p "$sig" && cd "$sig"
  treerpo-synth --count 2000000 --latent-shape 1,2,2 --no-images --steps 4 --depth 2 -o out.h5 -q 2>err.txt &
  pid=$!
  wait_for_handler "$pid" "$sig"
  sleep 0.5
  kill -"$sig" "$pid"
  wait "$pid"
  rc=$?
  want=$((128 + $(kill -l "$sig")))
  [ "$rc" = "$want" ] && pass || fail "SIG$sig: exit $rc, expected $want ($(cat err.txt))"
  grep -q 'interrupted by signal' err.txt && pass || fail "SIG$sig: no message: $(cat err.txt)"
  [ -z "$(ls -A | grep -v err.txt)" ] && pass || fail "SIG$sig left files: $(ls -A)"
  cd ..
done
finish
