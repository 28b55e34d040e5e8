#!/bin/bash
# Start/stop an OpenIPMI ipmi_sim BMC on loopback for tests and the bare-metal benchmark.
#   [ADDR=127.0.0.N] ipmi-sim.sh start DIR [PORT] [SOLPORT]   -> writes configs into DIR, starts sim + fake console
#   (several BMCs: give each its own 127.0.0.N and the standard port 623, as real BMCs have)
#   ipmi-sim.sh stop DIR   -> stops both by the pids the start wrote
#   PASS=... sets the admin user's password (default "password"; at most 16 characters)
#   SENSORS=temp (default: "MB Temp"), full (also "Fan 1" and "12V") or none (no sensor, no SDR)
#   The emulator's command console listens on ADDR:9625 (sensor_set_value, sel_add, ... while it runs).
# Needs: openipmi, ipmitool, python3 (scripts/install-deps.sh). Users: admin/password (admin),
# oper/operpass (operator). State: DIR/state/power and DIR/state/actions (one line per action).
set -euo pipefail
cmd=$1; dir=$(realpath -m "$2"); port=${3:-9623}; solport=${4:-9624}; addr=${ADDR:-127.0.0.1}; pass=${PASS:-password}; sensors=${SENSORS:-temp}
case "$cmd" in
stop)
  for f in sim.pid console.pid; do
    [ -f "$dir/$f" ] && kill "$(cat "$dir/$f")" 2>/dev/null || true
    rm -f "$dir/$f"
  done
  exit 0;;
start) ;;
*) echo "usage: $0 start|stop DIR [PORT] [SOLPORT]" >&2; exit 2;;
esac
mkdir -p "$dir/state"
cat > "$dir/chassis.sh" <<'EOF'
#!/bin/sh
# ipmi_sim chassis_control helper. ipmi_sim runs "<prog> get power" (expects "power:N")
# and "<prog> set power 1" / "set reset 1" / "set shutdown 1" / "set boot pxe".
D=$(dirname "$0")/state; op=$1; shift
case "$op" in
get) for n in "$@"; do case "$n" in
       power) echo "power:$(cat "$D/power" 2>/dev/null || echo 0)";;
       boot)  echo "boot:$(cat "$D/boot" 2>/dev/null || echo default)";;
       *)     echo "$n:0";; esac; done;;
set) while [ $# -ge 2 ]; do n=$1; v=$2; shift 2
       echo "$(date +%s.%N) $n $v" >> "$D/actions"
       case "$n" in power) echo "$v" > "$D/power";; shutdown) echo 0 > "$D/power";;
                    boot) echo "$v" > "$D/boot";; esac; done;;
esac
exit 0
EOF
chmod +x "$dir/chassis.sh"
cat > "$dir/lan.conf" <<EOF
name "cibmc"
set_working_mc 0x20
  startlan 1
    addr $addr $port
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "$dir/chassis.sh"
  sol "tcp:127.0.0.1:$solport" 115200
  console $addr 9625
  user 1 false  ""      "x"        user     10 none md2 md5 straight
  user 2 true   "admin" "$pass" admin    10 none md2 md5 straight
  user 3 true   "oper"  "operpass" operator 10 none md2 md5 straight
EOF
python3 - "$dir" "$sensors" <<'EOF'
import sys
d, sensors = sys.argv[1], sys.argv[2]
def tl(s):
    b = s.encode(); return bytes([0xC0 | len(b)]) + b
def area(body):
    a = bytearray([1, 0]) + body + b"\xC1"
    while (len(a) + 1) % 8: a += b"\0"
    a[1] = (len(a) + 1) // 8; a.append((-sum(a)) & 0xFF); return bytes(a)
ch = area(bytes([0x17]) + tl("CH-PART-1") + tl("CHASSIS-SN-0001"))
bd = area(b"\0\0\0\0" + tl("Acme") + tl("SimBoard") + tl("BOARD-SN-0001") + tl("BRD-PN-1") + tl(""))
pr = area(b"\0" + tl("Acme") + tl("SimServer 1000") + tl("SS-1000") + tl("v1")
          + tl("PRODUCT-SN-0001") + tl("ASSET-42") + tl(""))
h = bytearray([1, 0, 1, (8 + len(ch)) // 8, (8 + len(ch) + len(bd)) // 8, 0, 0]); h.append((-sum(h)) & 0xFF)
img = bytes(h) + ch + bd + pr; img += b"\0" * (256 - len(img))
open(f"{d}/fru.bin", "wb").write(img)
def full(num, ty, unit, m, rexp, readable, thr, name):
    # full sensor record on BMC 0x20: thresholds readable per `readable`, raw UNR UC UNC LNR LC LNC in `thr`
    name = name.encode()
    body = [0x20,0,num, 7,1, 0x67,0x08, ty,1, 0,0, 0,0, readable,0, 0,unit,0, 0, m & 0xff,0, 0,0, 0,
            (rexp & 0xf) << 4, 0, 0,0,0, 0xff,0] + thr + [0,0, 0,0, 0, 0xC0 | len(name)] + list(name)
    return [0, 0, 0x51, 0x01, len(body)] + body
recs = {"none": [], "temp": [full(1, 0x01, 1, 1, 0, 0x38, [0xa0,0x90,0x70,0,0,0], "MB Temp")]}
recs["full"] = recs["temp"] + [full(2, 0x04, 18, 50, 0, 0x03, [0,0,0,0,0x14,0x1e], "Fan 1"),
                               full(3, 0x02, 4, 6, -2, 0x12, [0,0xdc,0,0,0xb4,0], "12V")]
open(f"{d}/sdr.txt", "w").write("".join("main_sdr_add 0x20 " + " ".join("0x%02x" % b for b in r) + "\n"
                                        for r in recs[sensors]))
emu = {"none": "", "temp": """sensor_add 0x20 0 1 0x01 0x01
sensor_set_value 0x20 0 1 0x2a 0
sensor_set_threshold 0x20 0 1 settable 111000 0xa0 0x90 0x70 00 00 00
sensor_set_event_support 0x20 0 1 enable scanning per-state 000111111000000 000111111000000 000111111000000 000111111000000
"""}
emu["full"] = emu["temp"] + """sensor_add 0x20 0 2 0x04 0x01
sensor_set_value 0x20 0 2 108 0
sensor_set_threshold 0x20 0 2 settable 000011 00 00 00 00 0x14 0x1e
sensor_set_event_support 0x20 0 2 enable scanning per-state 000000000000101 000000000000101 000000000000101 000000000000101
sensor_add 0x20 0 3 0x02 0x01
sensor_set_value 0x20 0 3 200 0
sensor_set_threshold 0x20 0 3 settable 010010 00 0xdc 00 00 0xb4 00
sensor_set_event_support 0x20 0 3 enable scanning per-state 000001000000100 000001000000100 000001000000100 000001000000100
"""
open(f"{d}/sensors.emu", "w").write(emu[sensors])
EOF
cat > "$dir/bmc.emu" <<EOF
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
sel_enable 0x20 1000 0x0a
sensor_add 0x20 0 0 35 0x6f event-only
sensor_set_event_support 0x20 0 0 enable scanning per-state 000000000001111 000000000000000 000000000001111 000000000000000
$(cat "$dir/sensors.emu")
$(cat "$dir/sdr.txt")
mc_add_fru_data 0x20 0 256 file 0 "$dir/fru.bin"
mc_enable 0x20
EOF
cat > "$dir/console.py" <<'EOF'
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
def serve(c):
    c.sendall(b"\r\nfakehost login: "); c.settimeout(1.0); n = 0
    while True:
        try:
            d = c.recv(1024)
            if not d: return
            c.sendall(b"[echo:" + d.upper() + b"]")
        except socket.timeout:
            n += 1
            try: c.sendall(b"\r\ntick %d\r\n" % n)
            except OSError: return
        except OSError: return
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
setsid python3 "$dir/console.py" "$solport" > "$dir/console.log" 2>&1 < /dev/null & echo $! > "$dir/console.pid"
setsid ipmi_sim -c "$dir/lan.conf" -f "$dir/bmc.emu" -s "$dir/state" -n > "$dir/sim.log" 2>&1 < /dev/null & echo $! > "$dir/sim.pid"
for i in $(seq 50); do
  ipmitool -I lanplus -C 3 -H "$addr" -p "$port" -U admin -P "$pass" -N 1 -R 1 mc info >/dev/null 2>&1 && { echo "ipmi_sim up on $addr:$port (pid $(cat "$dir/sim.pid"))"; exit 0; }
  sleep 0.1
done
echo "ipmi_sim did not come up; log:" >&2; cat "$dir/sim.log" >&2; exit 1
