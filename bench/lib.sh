# shellcheck shell=bash
# Helpers shared by the bench scripts. Sourced, never run.

# die MSG...: print to stderr and exit 1.
die() {
	echo "error: $*" >&2
	exit 1
}

# free_port: print a TCP port that is free on 127.0.0.1 right now. The kernel
# picks it (bind to port 0), so two calls rarely collide; callers that need
# several ports take them one after the other and check they differ.
free_port() {
	python3 - <<'EOF' 2>/dev/null && return 0
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
	# No python3: probe random high ports with bash's /dev/tcp.
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
		: "$i"
	done
	return 1
}

# free_ports N: print N distinct free ports, one per line.
free_ports() {
	local n=$1 got=() p
	while [ "${#got[@]}" -lt "$n" ]; do
		p=$(free_port) || die "no free loopback port"
		case " ${got[*]:-} " in *" $p "*) continue ;; esac
		got+=("$p")
	done
	printf '%s\n' "${got[@]}"
}

# wait_ready URL SECONDS: poll URL until it answers 200; return 1 on timeout.
wait_ready() {
	local url=$1 secs=$2 i
	for ((i = 0; i < secs * 10; i++)); do
		if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null)" = 200 ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# pid_alive PIDFILE: true when the file names a running process.
pid_alive() {
	local pid
	[ -s "$1" ] || return 1
	pid=$(cat "$1")
	[ -n "$pid" ] && running "$pid"
}

# running PID: true when PID exists and is not a zombie (our daemons are
# reparented to init, which may reap them only later).
running() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

# stop_pidfiles PIDFILE...: TERM the processes named in the files (all at
# once), wait up to 10 s for them to exit, then KILL what is left; remove the
# files. Fine when a file or its process is gone.
stop_pidfiles() {
	local f pid pids=() i alive
	for f in "$@"; do
		[ -f "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null || true)
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done
	for ((i = 0; i < 100 && ${#pids[@]} > 0; i++)); do
		alive=()
		for pid in "${pids[@]}"; do
			running "$pid" && alive+=("$pid")
		done
		pids=("${alive[@]+"${alive[@]}"}")
		[ "${#pids[@]}" -eq 0 ] || sleep 0.1
	done
	for pid in "${pids[@]+"${pids[@]}"}"; do
		echo "stop: pid $pid still running after 10 s, killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -f "$@"
}

# gen_certs DIR: a fresh mesh PKI in DIR, ECDSA P-256: root CA (ca.crt, the
# trust bundle), an intermediate, and two leaves with exactly one URI SAN each
# (spiffe://bench.weft/ns/default/sa/{client,server}). client.crt and
# server.crt hold leaf + intermediate; client.pem / server.pem hold chain +
# key (HAProxy's format).
gen_certs() {
	local d=$1 td=spiffe://bench.weft/ns/default/sa
	mkdir -p "$d"
	(
		cd "$d"
		umask 077
		cat >ext.cnf <<EOF
[int]
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[client]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=critical,URI:$td/client
authorityKeyIdentifier=keyid
[server]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=critical,URI:$td/server
authorityKeyIdentifier=keyid
EOF
		key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
		key ca.key
		openssl req -x509 -new -key ca.key -subj "/O=weft-bench/CN=bench root CA" -days 2 \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
			-out ca.crt 2>/dev/null
		key int.key
		openssl req -new -key int.key -subj "/O=weft-bench/CN=bench intermediate" -out int.csr
		openssl x509 -req -in int.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
			-extfile ext.cnf -extensions int -out int.crt 2>/dev/null
		local who
		for who in client server; do
			key "$who.key"
			openssl req -new -key "$who.key" -subj "/O=weft-bench" -out "$who.csr"
			openssl x509 -req -in "$who.csr" -CA int.crt -CAkey int.key -CAcreateserial -days 2 \
				-extfile ext.cnf -extensions "$who" -out "$who.leaf.crt" 2>/dev/null
			cat "$who.leaf.crt" int.crt >"$who.crt"
			cat "$who.crt" "$who.key" >"$who.pem"
		done
		rm -f ./*.csr ./*.srl
		openssl verify -CAfile ca.crt -untrusted int.crt client.leaf.crt server.leaf.crt >/dev/null
	) || die "certificate generation failed in $d"
}

# log_tail FILE: last lines of a log, to stderr, for failure reports.
log_tail() {
	echo "---- last lines of $1 ----" >&2
	tail -n 30 "$1" >&2 2>/dev/null || true
	echo "----" >&2
}

# wait_pair_up STATE TIMEOUT WHAT STOPFN: waits until the server and client of
# a pair in STATE answer 200 on their admin /ready, or fails after TIMEOUT
# seconds (or as soon as one exits), showing the log and calling STOPFN.
wait_pair_up() {
	local state=$1 timeout=$2 what=$3 stopfn=$4 admin who deadline=$((SECONDS + $2))
	for who in server client; do
		admin=$(cat "$state/$who.admin")
		while :; do
			if ! pid_alive "$state/$who.pid"; then
				log_tail "$state/$who.log"
				"$stopfn"
				die "$who $what exited during startup (config in $state)"
			fi
			if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$admin/ready" 2>/dev/null)" = 200 ]; then
				break
			fi
			if [ "$SECONDS" -ge "$deadline" ]; then
				curl -s --max-time 1 "http://$admin/ready" >&2 || true
				log_tail "$state/$who.log"
				"$stopfn"
				die "$who $what not ready on http://$admin/ready after ${timeout}s"
			fi
			sleep 0.1
		done
	done
}
