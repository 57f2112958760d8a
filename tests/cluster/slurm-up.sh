#!/usr/bin/env bash
# A one-node SLURM cluster on 127.0.0.1, with accounting (slurmdbd on MariaDB), for the tests
# marked `slurm`. Run as root on a Debian machine; installs what is missing from Debian's
# packages. Every daemon it starts writes its PID under $SLURM_TEST_DIR/pids/, which
# slurm-down.sh stops, and nothing else.
#   SLURM_TEST_DIR (default /tmp/lstm-sweep-slurm): state, spool, logs, PID files, the config
set -euo pipefail
DIR=${SLURM_TEST_DIR:-/tmp/lstm-sweep-slurm}
if [ "$(id -u)" != 0 ]; then echo "slurm-up.sh: must run as root (it installs packages and starts daemons)" >&2; exit 1; fi
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null \
   || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # slurmdbd: accounting, without which sacct fails and a failed job reads as UNKNOWN
  apt-get install -y -qq --no-install-recommends slurm-wlm slurmdbd munge mariadb-server >/dev/null
fi
mkdir -p "$DIR"/{pids,log,state,spool,mysql,mariadb}
chown mysql:mysql "$DIR/mysql" "$DIR/mariadb"  # MariaDB's data, and its socket, log and PID file
mkdir -p "$DIR/munge" && chown munge:munge "$DIR/munge" && chmod 700 "$DIR/munge"  # munged's own: it refuses a shared one
CONF=/etc/slurm
mkdir -p "$CONF"

# munge: the key, its socket folder (no init system creates /run/munge), the daemon.
[ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; }
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge && chown munge:munge /run/munge /var/lib/munge /var/log/munge
chmod 755 /run/munge
if ! { [ -s "$DIR/pids/munged.pid" ] && kill -0 "$(cat "$DIR/pids/munged.pid")" 2>/dev/null; }; then
  runuser -u munge -- munged --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log"
  cp "$DIR/munge/munged.pid" "$DIR/pids/munged.pid"
fi

# MariaDB for slurmdbd, on a socket of its own (no TCP), in a data folder of its own.
if [ ! -d "$DIR/mysql/mysql" ]; then
  mariadb-install-db --no-defaults --user=mysql --datadir="$DIR/mysql" >/dev/null
fi
SOCK="$DIR/mariadb/mysql.sock"
mariadbd --no-defaults --user=mysql --datadir="$DIR/mysql" --socket="$SOCK" --pid-file="$DIR/mariadb/mariadbd.pid" \
  --skip-networking --log-error="$DIR/mariadb/mariadb.log" &
for _ in $(seq 150); do mariadb --no-defaults -S "$SOCK" -e "select 1" >/dev/null 2>&1 && break; sleep 0.2; done
cp "$DIR/mariadb/mariadbd.pid" "$DIR/pids/mariadbd.pid"
mariadb --no-defaults -S "$SOCK" -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

MEM=$(( $(free -m | awk '/^Mem:/ {print $2}') - 1024 ))
CPUS=$(nproc)
cat > "$CONF/slurmdbd.conf" <<CONFEND
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StorageParameters=SSL_CA=/dev/null
PidFile=$DIR/pids/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
CONFEND
# slurmdbd reaches MariaDB through its socket: the client library's default path
mkdir -p /run/mysqld && ln -sf "$SOCK" /run/mysqld/mysqld.sock
chmod 600 "$CONF/slurmdbd.conf"
cat > "$CONF/slurm.conf" <<CONFEND
ClusterName=lstmsweep
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
# a requeued job starts again within seconds, not after the default 120 s
AuthInfo=cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/pids/slurmctld.pid
SlurmdPidFile=$DIR/pids/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# job ids from the clock: a wiped state folder never hands out an id a sweep folder already names
FirstJobId=$(( $(date +%s) % 60000000 + 1000 ))  # below MaxJobId (67043328); wraps after 694 days
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
KillWait=10
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONFEND
slurmdbd
for _ in $(seq 100); do sacctmgr -i -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
sacctmgr -i add cluster lstmsweep >/dev/null 2>&1 || true
slurmctld
slurmd
for _ in $(seq 150); do
  state=$(sinfo -h -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.2
done
if [ "$state" != idle ]; then
  scontrol update NodeName=localhost State=RESUME 2>/dev/null || true
  sleep 1; state=$(sinfo -h -o %T 2>/dev/null || true)
fi
[ "$state" = idle ] || { echo "slurm-up.sh: the node is '$state', not idle; see $DIR/log" >&2; exit 1; }
echo "SLURM $(sinfo -V | cut -d' ' -f2) up: 1 node, $CPUS CPUs, ${MEM} MB; state in $DIR"
