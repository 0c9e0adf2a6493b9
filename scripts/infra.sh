#!/usr/bin/env bash
# Starts and stops the real infrastructure Pitwall runs on, without Docker:
#   - Apache Kafka (KRaft, one combined broker+controller) from Maven Central jars, with TLS, SASL
#     SCRAM-SHA-512 and ACLs: a user per service plus admin, passwords in $PITWALL_HOME/secrets/kafka,
#     its CA certificate in $PITWALL_HOME/pki/kafka/ca.pem
#     (users and ACLs are provisioned on every `up` by services/common/dist: build first)
#   - Mosquitto from the Debian package
#   - HiveMQ Community Edition (embedded, from Maven Central) with Pitwall's certificate identities and
#     ACL as an embedded extension (infra/hivemq): the second MQTT 5 broker, only with `up hivemq`
#   - Apicurio Registry from Maven Central, used through its Confluent API (/apis/ccompat/v7): reads
#     anonymous, writes only as admin (password in $PITWALL_HOME/secrets/registry); every `up`
#     registers the schemas (the deploy step, npm run schemas -- deploy)
#
#   scripts/infra.sh up       install what is missing (cached), start what is not running, wait until ready
#                             (`up kafka mosquitto apicurio`: only those named, e.g. a private Kafka for a test)
#   scripts/infra.sh down     stop only the processes this script started
#   scripts/infra.sh status   show what runs where, and where the logs are
#   scripts/infra.sh hivemq-prepare <folder> <port>
#                             install HiveMQ (cached) and write <folder>/conf for a listener on <port>;
#                             prints the java classpath (tests start private brokers with it)
#   scripts/infra.sh reset    down, then delete data (topics, schemas, sessions); downloads and the fleet CA are kept
#   scripts/infra.sh reload   restart Mosquitto gracefully so it reads its ACL file and the CA's revocation
#                             list again and drops revoked cars' open connections (state is saved on stop)
#
# MQTT is TLS with client certificates only. `up` creates the fleet CA in PITWALL_PKI_DIR if there is
# none (with the brokers' server certificate and ingest's and dispatch's client certificates) and
# signs its CRL again; cars get theirs with `npm run pki -- issue car <id>`. Needs the built project.
#
# Configuration (environment):
#   PITWALL_HOME      state folder (downloads, data, logs, pids)   default: <repo>/.pitwall
#   PITWALL_HOST      address every server binds to                default: 127.0.0.1
#   KAFKA_PORT        Kafka client port                            default: 9092
#   KAFKA_CONTROLLER_PORT                                          default: 9093
#   MQTT_PORT         Mosquitto port (TLS, client certificates)    default: 8883
#   HIVEMQ_PORT       HiveMQ port (TLS, client certificates)       default: 8884
#   HIVEMQ_VERSION    com.hivemq:hivemq-community-edition-embedded default: 2025.5
#   PITWALL_PKI_DIR   the fleet CA's folder                        default: $PITWALL_HOME/pki
#   REGISTRY_PORT     Apicurio HTTP port                           default: 8081
#   KAFKA_VERSION     org.apache.kafka:kafka_2.13 version          default: 4.1.2
#   APICURIO_VERSION  io.apicurio:apicurio-registry-app version    default: 3.0.9 (3.1+ needs Java 21: set PITWALL_JAVA)
#   PITWALL_JAVA      java executable                              default: java on PATH
#   KAFKA_HEAP / REGISTRY_HEAP / HIVEMQ_HEAP                       default: 768m / 384m / 512m
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOME_DIR=${PITWALL_HOME:-$REPO/.pitwall}
HOST=${PITWALL_HOST:-127.0.0.1}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
MQTT_PORT=${MQTT_PORT:-8883}
HIVEMQ_PORT=${HIVEMQ_PORT:-8884}
HIVEMQ_VERSION=${HIVEMQ_VERSION:-2025.5}
PKI=${PITWALL_PKI_DIR:-$HOME_DIR/pki}
REGISTRY_PORT=${REGISTRY_PORT:-8081}
KAFKA_VERSION=${KAFKA_VERSION:-4.1.2}
APICURIO_VERSION=${APICURIO_VERSION:-3.0.9}
JAVA=${PITWALL_JAVA:-java}
KAFKA_HEAP=${KAFKA_HEAP:-768m}
REGISTRY_HEAP=${REGISTRY_HEAP:-384m}

CACHE=$HOME_DIR/cache
RUN=$HOME_DIR/run
LOGS=$HOME_DIR/logs
DATA=$HOME_DIR/data
mkdir -p "$CACHE" "$RUN" "$LOGS" "$DATA"

say() { printf '[infra] %s\n' "$*"; }
die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }

for v in KAFKA_PORT KAFKA_CONTROLLER_PORT MQTT_PORT HIVEMQ_PORT REGISTRY_PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} > 0 && ${!v} < 65536)) || die "$v must be a TCP port, got '${!v}'"
done

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# pid of a process we started, if it is still alive and still ours.
our_pid() {
  local f=$RUN/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null && grep -q "$2" "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$pid"
  else
    rm -f "$f"
    return 1
  fi
}

wait_until() { # name seconds command...
  local name=$1 secs=$2
  shift 2
  for ((i = 0; i < secs * 2; i++)); do
    if "$@"; then return 0; fi
    sleep 0.5
  done
  die "$name did not become ready in ${secs}s; see its log in $LOGS"
}

need_java() {
  command -v "$JAVA" >/dev/null || die "Java 17+ is required (set PITWALL_JAVA); on Debian: apt-get install -y openjdk-17-jre-headless"
}
need_maven() {
  command -v mvn >/dev/null || die "Maven is required to fetch Kafka and Apicurio from Maven Central; on Debian: apt-get install -y maven"
}

# ---------------------------------------------------------------- Kafka
kafka_libs=$CACHE/kafka-$KAFKA_VERSION/libs

install_kafka() {
  [[ -f $kafka_libs/.complete ]] && return 0
  need_maven
  say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $kafka_libs"
  rm -rf "$kafka_libs"
  mvn -q -B -f "$REPO/infra/kafka/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -DoutputDirectory="$kafka_libs" -DincludeScope=runtime >"$LOGS/maven-kafka.log" 2>&1 ||
    die "fetching Kafka failed; see $LOGS/maven-kafka.log"
  touch "$kafka_libs/.complete"
}

kafka_cmd() { "$JAVA" -cp "$kafka_libs/*" -Dlog4j2.configurationFile="$REPO/infra/kafka/log4j2.yaml" "$@"; }

# Kafka is secure by default (infra/kafka/server.properties): SASL on every listener, an ACL for
# everything. Identities: "broker" (SASL PLAIN, the broker's own, a super user; also used here to
# provision), "admin" (SCRAM-SHA-512, super user: CLIs, topic administration, tests) and one SCRAM
# user per service. Passwords: $PITWALL_HOME/secrets/kafka/<name>.password, generated once, mode 600.
KAFKA_SECRETS=$HOME_DIR/secrets/kafka
KAFKA_USERS=(admin ingest windowing scoring incidents dispatch console)

kafka_secrets() {
  (
    umask 077
    mkdir -p "$KAFKA_SECRETS"
    chmod 700 "$HOME_DIR/secrets" "$KAFKA_SECRETS"
    for u in broker "${KAFKA_USERS[@]}"; do
      # hex: no character that the --add-scram and SCRAM-SHA-512=[...] syntaxes would need quoted.
      [[ -s $KAFKA_SECRETS/$u.password ]] || od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$KAFKA_SECRETS/$u.password"
      chmod 600 "$KAFKA_SECRETS/$u.password"
    done
  )
}
kafka_password() { cat "$KAFKA_SECRETS/$1.password"; }

# TLS for the client listener: a CA and a server certificate (PEM) in $KAFKA_PKI, made once with
# openssl. Clients trust $KAFKA_PKI/ca.pem (KAFKA_SSL_CA_FILE). Kept in this one function so that
# it can switch to the fleet CA (services/common/src/pki.ts) when that lands.
KAFKA_PKI=$HOME_DIR/pki/kafka
kafka_tls_material() {
  [[ -s $KAFKA_PKI/server.pem && -s $KAFKA_PKI/ca.pem ]] && return 0
  command -v openssl >/dev/null || die "openssl is required for Kafka's TLS certificate (apt-get install -y openssl)"
  local san="IP:127.0.0.1,DNS:localhost"
  if [[ $HOST =~ ^[0-9.]+$ ]]; then [[ $HOST == 127.0.0.1 ]] || san+=",IP:$HOST"; else san+=",DNS:$HOST"; fi
  (
    umask 077
    mkdir -p "$KAFKA_PKI" && cd "$KAFKA_PKI"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=Pitwall local Kafka CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.pem
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$HOST" -keyout server.key -out server.csr
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' "$san" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -extfile server.ext -out server.crt
    # Kafka's PEM key store: the PKCS#8 key and the chain in one file.
    cat server.key server.crt ca.pem >server.pem.tmp && mv server.pem.tmp server.pem
    rm -f server.csr server.ext ca.srl
    chmod 644 ca.pem
  ) >"$LOGS/kafka-tls.log" 2>&1 || die "making Kafka's TLS certificate failed; see $LOGS/kafka-tls.log"
}

# Client properties for Kafka's own command-line tools, signed in as the broker identity.
kafka_tool_config() {
  (umask 077 && cat >"$RUN/kafka-tools.properties" <<PROPS
security.protocol=SASL_SSL
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_PKI/ca.pem
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="$(kafka_password broker)";
PROPS
  )
}

start_kafka() {
  if our_pid kafka kafka.Kafka >/dev/null; then say "Kafka already running on $HOST:$KAFKA_PORT"; return 0; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process; set KAFKA_PORT"
  need_java
  install_kafka
  kafka_secrets
  kafka_tls_material
  local conf=$RUN/kafka.properties data=$DATA/kafka
  # The generated file holds the broker's password: readable by the owner only.
  (umask 077 && sed -e "s|@HOST@|$HOST|g" -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$data|g" -e "s|@BROKER_PASSWORD@|$(kafka_password broker)|g" -e "s|@CLIENT_PROTOCOL@|SASL_SSL|g" \
    -e "s|@PKI_DIR@|$KAFKA_PKI|g" "$REPO/infra/kafka/server.properties" >"$conf")
  if [[ ! -f $data/meta.properties ]]; then
    mkdir -p "$data"
    local cluster scram=()
    for u in "${KAFKA_USERS[@]}"; do scram+=(--add-scram "SCRAM-SHA-512=[name=$u,password=$(kafka_password "$u")]"); done
    cluster=$(kafka_cmd kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
    kafka_cmd kafka.tools.StorageTool format --standalone -t "$cluster" -c "$conf" "${scram[@]}" >"$LOGS/kafka-format.log" 2>&1 ||
      die "formatting Kafka storage failed; see $LOGS/kafka-format.log"
  fi
  say "starting Kafka $KAFKA_VERSION on $HOST:$KAFKA_PORT (TLS, SASL SCRAM-SHA-512, ACLs)"
  KAFKA_OPTS= setsid nohup "$JAVA" -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -cp "$kafka_libs/*" -Dlog4j2.configurationFile="$REPO/infra/kafka/log4j2.yaml" \
    kafka.Kafka "$conf" >"$LOGS/kafka.log" 2>&1 </dev/null &
  echo $! >"$RUN/kafka.pid"
}

# Every `up`: the SCRAM users exist with the passwords in $KAFKA_SECRETS (a data dir formatted
# without them, or a password file replaced, gets them through the admin API), and every service's
# ACLs exist (services/common/src/kafka-acl.ts, for the TOPIC_* names in this environment).
provision_kafka() {
  local cli=$REPO/services/common/dist/src/kafka-provision-cli.js missing u
  [[ -f $cli ]] || die "Kafka users and ACLs are provisioned by $cli: build first (scripts/pitwall setup)"
  kafka_secrets
  missing=$(KAFKA_BROKERS=$HOST:$KAFKA_PORT KAFKA_SSL_CA_FILE=$KAFKA_PKI/ca.pem node "$cli" missing-users "$KAFKA_SECRETS") || die "checking Kafka users failed"
  if [[ -n $missing ]]; then
    kafka_tool_config
    for u in $missing; do
      say "creating Kafka user $u (SCRAM-SHA-512)"
      # (--add-config-file cannot express SCRAM credentials; the password is on this local command line briefly)
      kafka_cmd kafka.admin.ConfigCommand --bootstrap-server "$HOST:$KAFKA_PORT" --command-config "$RUN/kafka-tools.properties" \
        --alter --entity-type users --entity-name "$u" --add-config "SCRAM-SHA-512=[password=$(kafka_password "$u")]" >>"$LOGS/kafka-users.log" 2>&1 ||
        die "creating Kafka user $u failed; see $LOGS/kafka-users.log"
    done
    wait_until "Kafka users" 30 kafka_users_ready
  fi
  KAFKA_BROKERS=$HOST:$KAFKA_PORT KAFKA_SSL_CA_FILE=$KAFKA_PKI/ca.pem node "$cli" acls "$KAFKA_SECRETS" >>"$LOGS/kafka-acls.log" 2>&1 || die "creating Kafka ACLs failed; see $LOGS/kafka-acls.log"
}
kafka_users_ready() { [[ -z $(KAFKA_BROKERS=$HOST:$KAFKA_PORT KAFKA_SSL_CA_FILE=$KAFKA_PKI/ca.pem node "$REPO/services/common/dist/src/kafka-provision-cli.js" missing-users "$KAFKA_SECRETS") ]]; }

kafka_ready() { port_open "$KAFKA_PORT" && grep -q "Kafka Server started" "$LOGS/kafka.log"; }

# ---------------------------------------------------------------- fleet CA
pki_cli=$REPO/services/common/dist/src/pki-cli.js
ensure_pki() {
  [[ -f $pki_cli ]] || die "the fleet CA's tool is not built ($pki_cli); run scripts/pitwall setup first"
  node "$pki_cli" infra --dir "$PKI" --hosts "localhost,127.0.0.1,$HOST" >"$LOGS/pki.log" 2>&1 || die "preparing the fleet CA failed; see $LOGS/pki.log"
}

# ---------------------------------------------------------------- Mosquitto
install_mosquitto() {
  command -v mosquitto >/dev/null && return 0
  [[ $(id -u) == 0 ]] || die "mosquitto is not installed; run: sudo apt-get install -y mosquitto"
  say "installing mosquitto from Debian packages"
  { apt-get install -y -qq mosquitto || { apt-get update -qq && apt-get install -y -qq mosquitto; }; } >"$LOGS/apt-mosquitto.log" 2>&1 ||
    die "installing mosquitto failed; see $LOGS/apt-mosquitto.log"
}

start_mosquitto() {
  if our_pid mosquitto mosquitto >/dev/null; then say "Mosquitto already running on $HOST:$MQTT_PORT"; return 0; fi
  port_open "$MQTT_PORT" && die "port $MQTT_PORT is taken by another process (a system mosquitto service?); stop it or set MQTT_PORT"
  install_mosquitto
  local conf=$RUN/mosquitto.conf data=$DATA/mosquitto/
  mkdir -p "$data"
  sed -e "s|^listener .*|listener $MQTT_PORT $HOST|" -e "s|^persistence_location .*|persistence_location $data|" \
    -e "s|/mosquitto/pki/|$PKI/|g" -e "s|/mosquitto/config/|$REPO/infra/mosquitto/|g" \
    "$REPO/infra/mosquitto/mosquitto.conf" >"$conf"
  # Debian's mosquitto drops to user "mosquitto" when started as root; keep it as the caller instead.
  [[ $(id -u) == 0 ]] && echo "user root" >>"$conf"
  say "starting Mosquitto $(mosquitto -h 2>/dev/null | head -n1 | awk '{print $3}') on $HOST:$MQTT_PORT"
  setsid nohup mosquitto -c "$conf" >"$LOGS/mosquitto.log" 2>&1 </dev/null &
  echo $! >"$RUN/mosquitto.pid"
}

# ---------------------------------------------------------------- HiveMQ CE
hivemq_dir=$CACHE/hivemq-$HIVEMQ_VERSION
hivemq_src=$REPO/infra/hivemq/src/main/java/io/pitwall/hivemq/PitwallHiveMQ.java

# The jars from Maven Central, and the launcher compiled again whenever its source changes.
install_hivemq() {
  need_java
  if [[ ! -f $hivemq_dir/.complete ]]; then
    need_maven
    say "fetching HiveMQ CE $HIVEMQ_VERSION from Maven Central"
    rm -rf "$hivemq_dir/libs"
    mvn -q -B -f "$REPO/infra/hivemq/pom.xml" dependency:copy-dependencies -Dhivemq.version="$HIVEMQ_VERSION" \
      -DoutputDirectory="$hivemq_dir/libs" -DincludeScope=runtime >"$LOGS/maven-hivemq.log" 2>&1 ||
      die "fetching HiveMQ failed; see $LOGS/maven-hivemq.log"
    touch "$hivemq_dir/.complete"
  fi
  local sum classes
  sum=$(sha256sum "$hivemq_src" | cut -c1-16)
  classes=$hivemq_dir/classes-$sum
  if [[ ! -d $classes ]]; then
    local javac=${PITWALL_JAVA:+$(dirname "$PITWALL_JAVA")/}javac
    command -v "$javac" >/dev/null || die "javac is required to build infra/hivemq (a JDK 17+); on Debian: apt-get install -y openjdk-17-jdk-headless"
    mkdir -p "$classes.tmp"
    "$javac" -nowarn -d "$classes.tmp" -cp "$hivemq_dir/libs/*" "$hivemq_src" >"$LOGS/javac-hivemq.log" 2>&1 ||
      die "compiling infra/hivemq failed; see $LOGS/javac-hivemq.log"
    mv "$classes.tmp" "$classes"
  fi
  HIVEMQ_CP="$classes:$hivemq_dir/libs/*"
}

# <folder> <port>: <folder>/conf/config.xml from infra/hivemq/config.xml, with PKCS#12 key and trust
# stores made from the fleet CA's PEM files (HiveMQ reads no PEM). The store password is random,
# for this folder only.
hivemq_prepare() {
  local dir=$1 port=$2 pass
  mkdir -p "$dir/conf" "$dir/data"
  chmod 700 "$dir/conf"
  pass=$(openssl rand -hex 16)
  rm -f "$dir/conf/broker.p12" "$dir/conf/trust.p12"
  openssl pkcs12 -export -in "$PKI/issued/server/broker.pem" -inkey "$PKI/issued/server/broker.key" -certfile "$PKI/ca.pem" \
    -name broker -out "$dir/conf/broker.p12" -passout "pass:$pass" 2>"$LOGS/hivemq-tls.log" ||
    die "making HiveMQ's key store failed; see $LOGS/hivemq-tls.log"
  keytool -importcert -noprompt -alias fleet-ca -file "$PKI/ca.pem" -keystore "$dir/conf/trust.p12" -storetype PKCS12 \
    -storepass "$pass" >>"$LOGS/hivemq-tls.log" 2>&1 || die "making HiveMQ's trust store failed; see $LOGS/hivemq-tls.log"
  sed -e "s|@PORT@|$port|" -e "s|@HOST@|$HOST|" -e "s|@KEYSTORE@|$dir/conf/broker.p12|" \
    -e "s|@TRUSTSTORE@|$dir/conf/trust.p12|" -e "s|@PASSWORD@|$pass|g" "$REPO/infra/hivemq/config.xml" >"$dir/conf/config.xml"
  chmod 600 "$dir/conf/"*
}

# The broker's command line for a prepared <folder>, in the array HIVEMQ_ARGS.
hivemq_args() {
  HIVEMQ_ARGS=("$JAVA" "-Xmx${HIVEMQ_HEAP:-512m}" -cp "$HIVEMQ_CP" io.pitwall.hivemq.PitwallHiveMQ
    "$1/conf" "$1/data" "$REPO/infra/mosquitto/acl" "$PKI/crl.pem")
}

start_hivemq() {
  if our_pid hivemq PitwallHiveMQ >/dev/null; then say "HiveMQ already running on $HOST:$HIVEMQ_PORT"; return 0; fi
  port_open "$HIVEMQ_PORT" && die "port $HIVEMQ_PORT is taken by another process; stop it or set HIVEMQ_PORT"
  install_hivemq
  hivemq_prepare "$DATA/hivemq" "$HIVEMQ_PORT"
  hivemq_args "$DATA/hivemq"
  say "starting HiveMQ CE $HIVEMQ_VERSION on $HOST:$HIVEMQ_PORT"
  setsid nohup "${HIVEMQ_ARGS[@]}" >"$LOGS/hivemq.log" 2>&1 </dev/null &
  echo $! >"$RUN/hivemq.pid"
}
hivemq_ready() { port_open "$HIVEMQ_PORT" && grep -q "pitwall-hivemq started" "$LOGS/hivemq.log"; }

# ---------------------------------------------------------------- Apicurio Registry
apicurio_dir=$CACHE/apicurio-$APICURIO_VERSION

install_apicurio() {
  [[ -f $apicurio_dir/.complete ]] && return 0
  need_maven
  say "fetching Apicurio Registry $APICURIO_VERSION from Maven Central"
  rm -rf "$apicurio_dir" && mkdir -p "$apicurio_dir"
  mvn -q -B dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
    -DoutputDirectory="$apicurio_dir" >"$LOGS/maven-apicurio.log" 2>&1 || die "fetching Apicurio failed; see $LOGS/maven-apicurio.log"
  tar xzf "$apicurio_dir"/apicurio-registry-app-*.tar.gz -C "$apicurio_dir" && rm -f "$apicurio_dir"/apicurio-registry-app-*.tar.gz
  touch "$apicurio_dir/.complete"
}

start_apicurio() {
  if our_pid apicurio apicurio >/dev/null; then say "Apicurio already running on $HOST:$REGISTRY_PORT"; return 0; fi
  port_open "$REGISTRY_PORT" && die "port $REGISTRY_PORT is taken by another process; set REGISTRY_PORT"
  need_java
  install_apicurio
  # 3.1+ ships a quarkus fast-jar (quarkus-run.jar); 3.0.x an uber runner jar.
  local jar
  jar=$(ls "$apicurio_dir"/quarkus-run.jar "$apicurio_dir"/*-runner.jar 2>/dev/null | head -n1 || true)
  [[ -n $jar ]] || die "no runnable jar in $apicurio_dir"
  # Schemas are kept in an H2 file next to Kafka's data: with in-memory storage a restarted registry
  # hands out ids again from 1, and records already in Kafka would then name the wrong schema.
  local data=$DATA/apicurio
  mkdir -p "$data"
  registry_auth_config
  say "starting Apicurio Registry $APICURIO_VERSION on $HOST:$REGISTRY_PORT (storage: $data; writes: admin only)"
  pushd "$apicurio_dir" >/dev/null
  QUARKUS_LOG_LEVEL=WARN setsid nohup "$JAVA" -Xms128m -Xmx"$REGISTRY_HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dsmallrye.config.locations="$REGISTRY_SECRETS/auth.properties" \
    -Dquarkus.http.host="$HOST" -Dquarkus.http.port="$REGISTRY_PORT" -Dquarkus.http.access-log.enabled=false \
    -Dquarkus.log.level=WARN -Dquarkus.banner.enabled=false \
    -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=h2 \
    -Dapicurio.datasource.url="jdbc:h2:file:$data/registry;DB_CLOSE_ON_EXIT=FALSE" \
    -Dapicurio.datasource.username=sa -Dapicurio.datasource.password=sa \
    -jar "$jar" >"$LOGS/apicurio.log" 2>&1 </dev/null &
  echo $! >"$RUN/apicurio.pid"
  popd >/dev/null
}

apicurio_ready() { curl -sf -o /dev/null "http://$HOST:$REGISTRY_PORT/apis/ccompat/v7/subjects"; }

# Who may write the registry: HTTP basic sign-in (Quarkus embedded users) with Apicurio's roles.
# Only `admin` (sr-admin) registers schemas and changes compatibility: the deploy step below, or an
# operator. Reads stay anonymous (apicurio.auth.anonymous-read-access): all a service does. The
# password is in $REGISTRY_SECRETS/admin.password; the properties file holds it too, so both are
# mode 600 and it is passed by path, never on the command line (ps would show it).
REGISTRY_SECRETS=$HOME_DIR/secrets/registry
registry_auth_config() {
  mkdir -p "$REGISTRY_SECRETS"
  chmod 700 "$HOME_DIR/secrets" "$REGISTRY_SECRETS"
  [[ -s $REGISTRY_SECRETS/admin.password ]] || od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$REGISTRY_SECRETS/admin.password"
  chmod 600 "$REGISTRY_SECRETS/admin.password"
  (
    umask 077
    cat >"$REGISTRY_SECRETS/auth.properties" <<EOF
quarkus.http.auth.basic=true
quarkus.security.users.embedded.enabled=true
quarkus.security.users.embedded.plain-text=true
quarkus.security.users.embedded.users.admin=$(cat "$REGISTRY_SECRETS/admin.password")
quarkus.security.users.embedded.roles.admin=sr-admin
apicurio.auth.role-based-authorization=true
apicurio.auth.role-source=token
apicurio.auth.anonymous-read-access.enabled=true
EOF
  )
}

# Every `up`: the deploy step registers every topic's schemas (npm run schemas -- deploy) as admin,
# for the topic names in the environment (TOPIC_*; unset: the defaults). Idempotent.
deploy_schemas() {
  local cli=$REPO/services/common/dist/src/schemas-cli.js
  [[ -f $cli ]] || die "the project is not built ($cli is missing): run npx turbo run build first"
  SCHEMA_REGISTRY_URL=http://$HOST:$REGISTRY_PORT/apis/ccompat/v7 SCHEMA_REGISTRY_USERNAME=admin \
    SCHEMA_REGISTRY_PASSWORD_FILE=$REGISTRY_SECRETS/admin.password \
    node "$cli" deploy >>"$LOGS/registry-deploy.log" 2>&1 || die "registering the schemas failed; see $LOGS/registry-deploy.log"
}

# ---------------------------------------------------------------- commands
stop_one() { # name pattern
  local pid
  if pid=$(our_pid "$1" "$2"); then
    say "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { say "$1 did not stop in 30s; killing"; kill -KILL "$pid" 2>/dev/null || true; }
    rm -f "$RUN/$1.pid"
  fi
}

status() {
  local name pattern port
  for spec in "kafka kafka.Kafka $KAFKA_PORT" "mosquitto mosquitto $MQTT_PORT" "hivemq PitwallHiveMQ $HIVEMQ_PORT" "apicurio apicurio $REGISTRY_PORT"; do
    read -r name pattern port <<<"$spec"
    if pid=$(our_pid "$name" "$pattern"); then
      printf '  %-10s running  pid %-7s %s:%s  log %s\n' "$name" "$pid" "$HOST" "$port" "$LOGS/$name.log"
    else
      printf '  %-10s stopped\n' "$name"
    fi
  done
}

case ${1:-} in
up)
  shift
  only=" ${*:-mosquitto kafka apicurio} "
  for c in $only; do [[ $c =~ ^(mosquitto|kafka|apicurio|hivemq)$ ]] || die "unknown component '$c' (mosquitto, kafka, apicurio, hivemq)"; done
  want() { [[ $only == *" $1 "* ]]; }
  if want mosquitto; then
    ensure_pki
    start_mosquitto
  fi
  if want kafka; then start_kafka; fi
  if want apicurio; then start_apicurio; fi
  if want hivemq; then ensure_pki; start_hivemq; fi
  if want mosquitto; then wait_until Mosquitto 20 port_open "$MQTT_PORT"; fi
  if want hivemq; then wait_until HiveMQ 60 hivemq_ready; fi
  if want kafka; then wait_until Kafka 90 kafka_ready; provision_kafka; fi
  if want apicurio; then wait_until "Apicurio Registry" 120 apicurio_ready; deploy_schemas; fi
  say "ready:"
  if want kafka; then say "  Kafka     $HOST:$KAFKA_PORT  (SASL_SSL, SCRAM-SHA-512; CA $KAFKA_PKI/ca.pem, passwords in $KAFKA_SECRETS)"; fi
  if want mosquitto; then say "  MQTT      mqtts://$HOST:$MQTT_PORT  (fleet CA: $PKI)"; fi
  if want hivemq; then say "  HiveMQ    mqtts://$HOST:$HIVEMQ_PORT  (fleet CA: $PKI; same identities and ACL)"; fi
  if want apicurio; then say "  Registry  http://$HOST:$REGISTRY_PORT/apis/ccompat/v7  (reads open; writes: admin, password in $REGISTRY_SECRETS)"; fi
  say "  logs      $LOGS"
  ;;
down)
  stop_one hivemq PitwallHiveMQ
  stop_one apicurio apicurio
  stop_one kafka kafka.Kafka
  stop_one mosquitto mosquitto
  ;;
status) status; echo "  logs: $LOGS" ;;
hivemq-prepare)
  [[ $# == 3 && $3 =~ ^[0-9]+$ ]] || die "usage: scripts/infra.sh hivemq-prepare <folder> <port>"
  ensure_pki
  install_hivemq >&2
  hivemq_prepare "$2" "$3"
  echo "$HIVEMQ_CP"
  ;;
reload)
  # Not SIGHUP: Mosquitto 2.0.11 (Debian 12) re-checks every session on a reload and can corrupt its
  # session-expiry list doing so, then abort minutes later when a session expires (seen here;
  # eclipse-mosquitto/mosquitto#3418, PR #3341). A graceful stop saves every session and queued
  # message; clients reconnect within about a second (ingest subscribes again, cars resend).
  our_pid mosquitto mosquitto >/dev/null || die "Mosquitto is not running"
  ensure_pki
  stop_one mosquitto mosquitto
  start_mosquitto
  wait_until Mosquitto 20 port_open "$MQTT_PORT"
  say "Mosquitto restarted: it uses $REPO/infra/mosquitto/acl and $PKI/crl.pem as they are now"
  ;;
reset)
  "$0" down
  rm -rf "$DATA"
  say "data removed ($DATA); downloads kept in $CACHE"
  ;;
*)
  sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
