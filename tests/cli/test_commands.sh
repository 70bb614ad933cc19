# The cmdb command's ordinary use: every subcommand, every output format.
. "$(dirname "$0")/lib.sh"
cli_db cli_commands

expect 0 --version; expect_out '^cmdb [0-9.]+ \(schema [0-9]+\)'
expect 0 help; expect_out 'Commands:'
expect 2; expect_err 'Usage: cmdb'
expect 2 frobnicate; expect_err 'no command "frobnicate"'
expect 2 ci; expect_err 'Commands of cmdb ci'
expect 2 ci frob; expect_err 'has no subcommand "frob"'
for c in "init" "db status" "db start" "db stop" "type list" "type show" "type add" "ci add" "ci list" \
         "ci show" "ci set" "ci retire" "ci history" "rel add" "rel rm" "rel list" "rel types" "audit chain"; do
  # shellcheck disable=SC2086
  expect 0 $c -h; expect_out '^Usage: cmdb'
  expect 0 help $c; expect_out '^Usage: cmdb'
done

expect 0 ci add host web01 -d "front web server" -a os=linux -a cpus:=4 -i mac=00:1A:2B:3C:4D:5E -o alice
expect_out '^[0-9]+$'; web=$(cat "$out")
expect 0 ci add service web01-https -d "HTTPS on web01" -a port:=443 --json
expect_out '"id": [0-9]+'; svc=$(sed -n 's/.*"id": \([0-9]*\).*/\1/p' "$out")
expect 0 rel add web01 provides "$svc"; expect_err 'related CI'
expect 0 -q rel add "$svc" depends_on mac=00:1a:2b:3c:4d:5e
expect_eq "$(wc -c <"$err")" 0 "--quiet silences notes"

expect 0 ci list; expect_out '^ID +TYPE +NAME +STATUS'; expect_out 'web01-https'
expect 0 ci list --type host --json; expect_out '"name": "web01"'; expect_no_out 'web01-https'
expect 0 ci list --attr os=linux --format csv
expect_out '^id,type,name,status,criticality,owner,description,attributes'
expect_out '"\{""os"": ""linux"", ""cpus"": 4\}"'
expect 0 ci list --attr cpus:=4 --json; expect_out '"cpus": 4'
expect 0 ci list --name 'web*' --limit 1 --json
expect_eq "$(grep -c '"id"' "$out")" 1 "--limit 1"

expect 0 ci show web01; expect_out '^name +web01'; expect_out 'provides [0-9]+ web01-https \(service\)'
expect_out 'mac=00:1a:2b:3c:4d:5e'
expect 0 ci show "$web" --json; expect_out '"relationships"'; expect_out '"label": "provides"'
expect 0 ci show mac=00-1a-2b-3c-4d-5e --json; expect_out '"name": "web01"'

before=$(sql "SELECT cmdb.rfc3339(clock_timestamp())")
sleep 0.05
expect 0 ci set web01 -s maintenance -a os=debian -u cpus --change CHG-7 -o ""
expect 0 ci show web01 --as-of "$before" --json; expect_out '"os": "linux"'; expect_out '"status": "live"'
expect 0 ci show web01 --json; expect_out '"os": "debian"'; expect_out '"owner": null'
expect 0 ci history web01; expect_out 'attributes.os +"linux" +"debian"'; expect_out 'CHG-7'
expect 0 ci history web01 --csv; expect_out '^id,at,op,field,old,new,db_user,os_user,source,change_ref,reason,other_ci'
expect 0 ci list --as-of "$before" --json --name web01; expect_out '"status": "live"'

expect 0 rel list web01; expect_out 'provides +[0-9]+ +service +web01-https'
expect 0 rel list web01 --direction in --json; expect_out '"label": "is depended on by"'
expect 0 rel rm web01 provides web01-https
expect 0 rel list web01 --direction out --json; expect_eq "$(tr -d ' \n' <"$out")" "[]" "relationship ended"
expect 0 rel list web01 --direction out --as-of "$before"; expect_out 'web01-https'
expect 0 rel types; expect_out 'depends_on +depends on +is depended on by +reverse'

expect 0 type add virtual_machine --parent host -d "a virtual machine" --require hypervisor
expect 0 type show virtual_machine; expect_out 'ancestors +host'; expect_out 'required +hypervisor'
expect 0 type list --json; expect_out '"name": "virtual_machine"'
expect 0 ci add virtual_machine vm1 -d "vm" -a hypervisor=kvm
expect 0 ci list --type host --json; expect_out '"name": "vm1"'

expect 0 ci retire vm1 --reason "replaced by vm2"
expect 0 ci history vm1 --json; expect_out '"reason": "replaced by vm2"'; expect_out '"op": "retire"'
expect 0 audit chain; expect_out 'history chain intact: [0-9]+ rows in [0-9]+ blocks verified'
expect 0 audit chain --json; expect_out '"intact": true'

# table output of a value with control characters is escaped, JSON keeps it exact
expect 0 ci add host ctl -d "control" -a 'note=bell\x07' 
expect 0 ci set ctl -a "esc=$(printf 'a\033[31mred')"
expect 0 ci show ctl; expect_out 'esc = a\\x1b\[31mred'
expect 0 ci show ctl --json; expect_out '"esc": "a\\u001[bB]\[31mred"'

expect 0 db status --json; expect_out '"mode": "external"'; expect_out '"schema_version": [0-9]+'
finish
