# cmdb scan when the database goes away mid-scan: nothing discovered is lost.
# A private embedded server is stopped while a (slow, rate-limited) connect
# scan of loopback runs; the scan must exit 1, keep its observations in a
# spool and say how to replay them; the replay must complete the run.
. "$(dirname "$0")/../cli/lib.sh"
home=$(mktemp -d /tmp/cmdb-spool-XXXXXX)
chmod 755 "$home"
export CMDB_HOME=$home CMDB_EMBEDDED_NOSYNC=1
listener=
cleanup() {
  [ -n "$listener" ] && kill "$listener" 2>/dev/null
  "$CMDB" db stop -q >/dev/null 2>&1
  rm -rf "$home" "$out" "$err"
}
trap cleanup EXIT
python3 -m http.server 48311 --bind 127.0.0.1 >/dev/null 2>&1 &
listener=$!
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/48311) 2>/dev/null && break; sleep 0.1; done

expect 0 scan 127.0.0.1 -p 48311 --wait 0.2
expect_err '1 CIs created|3 CIs created'
expect_eq "$(ls "$home/spool" | wc -l)" 0 "no spool left after a good scan"

# about 5 s of scanning at 5 connects a second; the server stops after 1 s
"$CMDB" scan 127.0.0.1 -p 48300-48320 --rate 5 --wait 0.2 >"$out" 2>"$err" &
scan=$!
sleep 1
"$CMDB" db stop -q
wait "$scan"; code=$?
expect_eq "$code" 1 "scan exits 1 when the CMDB fails"
expect_err "the scan's observations are kept in $home/spool/scan-[0-9-]+\\.ndjson; once the CMDB is reachable, replay them: cmdb ingest"
spool=$(ls "$home"/spool/*.ndjson)
expect_eq "$(grep -c '"kind":"scan_end"' "$spool")" 1 "the spool holds the whole scan"
expect_eq "$(grep '"kind":"port"' "$spool" | grep -c '"port":48311')" 1 "with what it found"
"$CMDB" db start -q
expect 0 ingest "$spool"
expect_err '0 rejected'
expect 0 scans --json
expect_eq "$(grep -c '"complete": true' "$out")" 2 "both runs complete"
finish
