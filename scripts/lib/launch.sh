# shellcheck shell=bash
# The shared logic of the scripts/run-*.sh launchers. Sourced, never executed; every launcher is
#   source scripts/lib/launch.sh && slime_launch <config-name> "$@"
#
# What a launch does, in order:
#   1. gets its arrays: from ARGS_FILE (a file tools/generate_args.py wrote) or by running the
#      generator for its config with the launcher's arguments as Hydra overrides;
#   2. checks the environment and reports everything missing at once;
#   3. starts a Ray head on this node (and, with HOSTFILE, a worker on each listed host over ssh),
#      or joins the cluster at RAY_ADDRESS; a head's ports must be free (a taken one is refused,
#      naming the variable that moves it), and the dashboard the job goes to must be that head's;
#   4. submits `python3 train.py` (or the args file's SLIME_ENTRY_POINT, train_async.py) with every
#      array, following the job's output (SLIME_ARGS_FILE names the args file, which the trainer
#      copies into every checkpoint);
#   5. stops the Ray processes it started itself, and nothing else: only PIDs that are still its
#      running children are signalled.
#
# Environment:
#   ARGS_FILE        use this generated args file instead of generating one (no overrides then)
#   BASE_FOLDER …    whatever shell variables the config refers to
#   MASTER_ADDR      address of this (head) node; required when the run spans several nodes
#   HOSTFILE         worker hosts, one per line (# comments allowed), for runs on several nodes
#   RAY_ADDRESS      dashboard of a running cluster (http://host:8265): submit there, start nothing
#   RAY_PORT, RAY_DASHBOARD_PORT, RAY_AGENT_PORT, RAY_CLIENT_PORT
#                    ports of the head started here (6379, 8265, 52365, 10001): set them to run
#                    beside another Ray cluster on the same node (a taken port is refused)
#   SLIME_NUM_GPUS   GPUs each node declares to Ray (default: what the config uses per node)
#   MEGATRON_LM_PATH a Megatron-LM checkout added to the job's PYTHONPATH
#   SLIME_DRY_RUN=1  same as --dry-run: print every command, one per line, and run none
#   PYTHON           the Python that runs the generator (python3)
#   RAY_AUTH_MODE    Ray's authentication (token unless set; the token is ~/.ray/auth_token, which
#                    the launcher creates when missing, tightens to 0600 when others can read it, and
#                    the worker hosts must share; the workers' `ray start` gets the same RAY_AUTH_MODE)
#   SLIME_JOIN_TIMEOUT seconds the worker hosts of HOSTFILE have to join the head (180) before the
#                    launcher stops, naming those still missing, without submitting

SLIME_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The generator, the plan and the probes below import this checkout's package, whether or not it is
# the installed one (scripts/install-deps.sh installs a checkout editable; another may be installed).
export PYTHONPATH="${SLIME_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
SLIME_STARTED_PIDS=()
SLIME_TEMP_FILES=()
SLIME_WORKER_LOGS=()    # each worker host's ssh session output, removed at exit unless a worker failed
SLIME_KEEP_WORKER_LOGS=0

slime::die() {
  printf 'launcher: %s\n' "$@" >&2
  exit 1
}

slime::warn() {
  printf 'launcher: %s\n' "$@" >&2
}

# What the launch is doing now, on stderr (not in a dry run, whose output is its commands).
slime::progress() {
  [[ "${SLIME_DRY_RUN:-0}" == 1 ]] || printf 'launcher: %s\n' "$@" >&2
}

# One word quoted for bash: bare when safe, in single quotes when possible, else printf %q.
slime::quote_word() {
  # A leading = is quoted too: zsh would expand =ls to the path of ls.
  if [[ "$1" =~ ^[A-Za-z0-9_@%+:,./-][A-Za-z0-9_@%+=:,./-]*$ ]]; then
    printf '%s' "$1"
  elif [[ "$1" != *"'"* && "$1" != *[[:cntrl:]]* ]]; then
    printf "'%s'" "$1"
  else
    printf '%q' "$1"
  fi
}

# A command as one copy-pasteable line.
slime::quote_line() {
  local quoted=() word
  for word in "$@"; do
    quoted+=("$(slime::quote_word "${word}")")
  done
  printf '%s\n' "${quoted[*]}"
}

# Run a command, or under --dry-run print it and run nothing.
slime::run() {
  if [[ "${SLIME_DRY_RUN:-0}" == 1 ]]; then
    slime::quote_line "$@"
  else
    "$@"
  fi
}

# Start a command in the background and remember it, so cleanup stops exactly what was started.
# With SLIME_BACKGROUND_LOG set, its output goes to that file.
slime::run_background() {
  if [[ "${SLIME_DRY_RUN:-0}" == 1 ]]; then
    printf '%s &\n' "$(slime::quote_line "$@")"
    return
  fi
  if [[ -n "${SLIME_BACKGROUND_LOG:-}" ]]; then
    "$@" </dev/null >"${SLIME_BACKGROUND_LOG}" 2>&1 &
  else
    "$@" &
  fi
  SLIME_STARTED_PIDS+=("$!")
}

# Whether a PID is a background job of this shell that is still running: a PID that has exited
# may belong to another process by now, and is never signalled.
slime::is_running_child() {
  local running
  running=" $(jobs -rp | tr '\n' ' ') "
  [[ "${running}" == *" $1 "* ]]
}

slime::cleanup() {
  local pid
  slime::restore_current_cluster
  for pid in "${SLIME_STARTED_PIDS[@]}"; do
    # `ray start --block` drains and stops its own processes on SIGTERM; over `ssh -tt` the
    # remote one gets SIGHUP when the ssh client ends, which it handles the same way.
    if slime::is_running_child "${pid}"; then
      kill -TERM "${pid}" 2>/dev/null || true
    fi
  done
  for pid in "${SLIME_STARTED_PIDS[@]}"; do
    wait "${pid}" 2>/dev/null || true
  done
  if ((${#SLIME_TEMP_FILES[@]})); then
    rm -f -- "${SLIME_TEMP_FILES[@]}"
  fi
  if ((${#SLIME_WORKER_LOGS[@]})) && [[ "${SLIME_KEEP_WORKER_LOGS}" != 1 ]]; then
    rm -f -- "${SLIME_WORKER_LOGS[@]}"
  fi
}

slime::usage() {
  local names=() file
  for file in "${SLIME_ROOT}"/conf/run_*.yaml; do
    names+=("$(basename "${file}" .yaml)")
  done
  cat <<EOF
usage: bash ${0##*/} [--dry-run] [HYDRA OVERRIDES...]
Launches ${1} (conf/${1}.yaml). Overrides go to tools/generate_args.py, for example
optimizer.lr=2e-6 +experiment=quick_test: the trainer's flags are config keys here (--lr 2e-6 is
optimizer.lr=2e-6; tools/generate_args.py --config-name ${1} --which optimizer.lr says where one is set).
Set ARGS_FILE to use a file the generator wrote.
See the top of scripts/lib/launch.sh for the environment variables.

The primary configs, each with its launcher scripts/run-<name>.sh (underscores as dashes):
$(printf '%s\n' "${names[@]}" | paste -sd, - | sed 's/,/, /g')
EOF
}

# The shell variables a generated args file refers to, from its header.
slime::required_variables() {
  sed -n 's/^# shell variables expanded when sourced: //p' "$1" | tr ',' ' ' | sed 's/\bnone\b//'
}

slime::is_complete() {
  [[ "$(tail -n 1 "$1")" == "SLIME_ARGS_COMPLETE=1" ]]
}

# The worker hosts of HOSTFILE, without comments and blank lines.
slime::workers() {
  sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^[[:space:]]*$/d' "${HOSTFILE}"
}

slime::has_nvlink() {
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi topo -m 2>/dev/null | grep -q 'NV[0-9]'; then
    echo 1
  else
    echo 0
  fi
}

slime_launch() {
  local config="$1"
  shift
  local python="${PYTHON:-python3}" overrides=() arg
  for arg in "$@"; do
    case "${arg}" in
      --dry-run) SLIME_DRY_RUN=1 ;;
      -h | --help)
        slime::usage "${config}"
        return 0
        ;;
      *) overrides+=("${arg}") ;;
    esac
  done
  trap slime::cleanup EXIT
  local invoked_from="${PWD}"
  cd "${SLIME_ROOT}" || slime::die "cannot enter ${SLIME_ROOT}"
  export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
  local has_python=1 no_python="PYTHON=${python} is not a command on PATH: set PYTHON to the Python of this project's environment"
  command -v "${python}" >/dev/null 2>&1 || has_python=0
  # Without ARGS_FILE the generator needs Python before anything else can be checked.
  [[ -n "${ARGS_FILE:-}" || "${has_python}" == 1 ]] || slime::die "${no_python}"

  # 1. the arrays
  local args_file
  if [[ -n "${ARGS_FILE:-}" ]]; then
    ((${#overrides[@]} == 0)) || slime::die "overrides go to the generator; with ARGS_FILE set, regenerate that file instead"
    args_file="${ARGS_FILE}"
    [[ -f "${args_file}" ]] || slime::die "ARGS_FILE ${args_file} does not exist"
    slime::is_complete "${args_file}" ||
      slime::die "ARGS_FILE ${args_file} is incomplete (no SLIME_ARGS_COMPLETE=1 at its end): regenerate it"
  else
    args_file="$(mktemp "${TMPDIR:-/tmp}/slime-args.XXXXXX")"
    SLIME_TEMP_FILES+=("${args_file}")
    if [[ "${SLIME_DRY_RUN:-0}" == 1 ]]; then
      printf '# %s\n' "$(slime::quote_line "${python}" tools/generate_args.py --config-name "${config}" "${overrides[@]}")"
    fi
    "${python}" tools/generate_args.py --config-name "${config}" "${overrides[@]}" -o "${args_file}" ||
      slime::die "the config did not generate (see above); nothing was started"
  fi

  # 2. the environment: everything missing is reported at once
  local problems=() missing=() name
  for name in $(slime::required_variables "${args_file}"); do
    if [[ -z "${!name:-}" ]]; then
      missing+=("${name}")
      problems+=("${name} is not set: the config refers to \${${name}}")
    fi
  done
  ((has_python)) || problems+=("${no_python}")
  if [[ "${SLIME_DRY_RUN:-0}" != 1 ]]; then
    command -v ray >/dev/null 2>&1 || problems+=("ray is not on PATH (bash scripts/install-deps.sh installs it)")
  fi
  # The arrays are read in a subshell, a missing variable getting a placeholder there only so the
  # plan can still be computed and every problem reported: nothing runs while one is missing.
  local fields=() argv=() job_env=() workers=() count nodes gpus_per_node entry_point
  mapfile -d '' fields < <(slime::read_arrays "${args_file}" "${missing[@]}")
  ((${#fields[@]})) || slime::die "${args_file} did not source completely: regenerate it"
  entry_point="${fields[0]}"
  count="${fields[1]}"
  argv=("${fields[@]:2:count}")
  job_env=("${fields[@]:count+3}")
  case "${entry_point}" in
    train.py | train_async.py) ;;
    *) slime::die "${args_file} names the entry point '${entry_point}' (SLIME_ENTRY_POINT); the trainer's are train.py and train_async.py" ;;
  esac
  # The plan needs Python: without it, report what was found so far (the missing variables too).
  ((has_python)) || slime::die "${problems[@]}"
  read -r nodes gpus_per_node < <("${python}" -m slime.launch.plan --nodes -- "${argv[@]}") ||
    slime::die "could not compute the plan of ${config}"
  if [[ "${SLIME_DRY_RUN:-0}" == 1 ]]; then
    # The plan, each engine's server command included, as comments: the output stays a list of commands.
    "${python}" -m slime.launch.plan --entry-point "${entry_point}" -- "${argv[@]}" | sed 's/^/# /'
  fi
  gpus_per_node="${SLIME_NUM_GPUS:-${gpus_per_node}}"
  slime::check_nodes "${nodes}" "${gpus_per_node}"
  if [[ "${SLIME_DRY_RUN:-0}" != 1 && -z "${RAY_ADDRESS:-}" ]]; then
    slime::check_ports
    slime::check_workers_reachable
  fi
  ((${#problems[@]} == 0)) || slime::die "${problems[@]}"

  # 3. Ray, and 4. the job
  local runtime_env address="${RAY_ADDRESS:-}"
  runtime_env="$("${python}" -m slime.utils.runtime_env \
    "PYTHONPATH=${SLIME_ROOT}${MEGATRON_LM_PATH:+:${MEGATRON_LM_PATH}}" \
    "CUDA_DEVICE_MAX_CONNECTIONS=1" \
    "NCCL_NVLS_ENABLE=$(slime::has_nvlink)" \
    "SLIME_ARGS_FILE=$(realpath "${args_file}")" \
    "SLIME_LAUNCH_COMMAND=$(slime::launch_command "${invoked_from}" "${args_file}" "${overrides[@]}")" \
    "${job_env[@]}")"
  if [[ -z "${address}" ]]; then
    address="http://${MASTER_ADDR:-127.0.0.1}:${RAY_DASHBOARD_PORT:-8265}"
    slime::start_ray "${gpus_per_node}"
  fi
  slime::submit ray job submit --address "${address}" --runtime-env-json "${runtime_env}" -- python3 "${entry_point}" "${argv[@]}"
  if [[ "${SLIME_DRY_RUN:-0}" == 1 && -z "${ARGS_FILE:-}" ]]; then
    # The job's SLIME_ARGS_FILE above names the generated file: a dry run that got this far keeps it.
    slime::keep_temp_file "${args_file}"
    printf '# SLIME_ARGS_FILE above is the generated args file, kept: %s\n' "$(slime::quote_word "$(realpath "${args_file}")")"
  fi
}

# Leave a temporary file in place when the launch ends.
slime::keep_temp_file() {
  local kept=() file
  for file in "${SLIME_TEMP_FILES[@]}"; do
    [[ "${file}" == "$1" ]] || kept+=("${file}")
  done
  SLIME_TEMP_FILES=("${kept[@]}")
}

# This launch again, as one line: cd, the launch variables that are set, the launcher and its
# overrides; the command a run that stops mid-way gives to resume it. The config's own variables
# ($2's header) are left to the environment, written NAME="$NAME" (they may hold secrets). $1 is
# where the launcher was started from, for relative paths.
slime::launch_command() {
  local from="$1" args_file="$2" words=() name value script config_vars=""
  shift 2
  script="$(cd "${from}" && realpath "$0")"
  [[ "${script}" != "${SLIME_ROOT}/"* ]] || script="${script#"${SLIME_ROOT}/"}"
  for name in ARGS_FILE MASTER_ADDR HOSTFILE RAY_ADDRESS RAY_PORT RAY_DASHBOARD_PORT RAY_AGENT_PORT \
    RAY_CLIENT_PORT SLIME_NUM_GPUS SLIME_JOIN_TIMEOUT MEGATRON_LM_PATH PYTHON; do
    value="${!name:-}"
    [[ -n "${value}" ]] || continue
    case "${name}" in ARGS_FILE | HOSTFILE) value="$(cd "${from}" && realpath "${value}")" ;; esac
    words+=("${name}=${value}")
  done
  for name in $(slime::required_variables "${args_file}"); do
    config_vars+="${name}=\"\$${name}\" "
  done
  printf 'cd %s && %s%s\n' "$(slime::quote_word "${SLIME_ROOT}")" "${config_vars}" \
    "$(slime::quote_line "${words[@]}" bash "${script}" "$@")"
}

# Submit and follow the job. A head that has just started may not have registered its dashboard
# agent yet; Ray then refuses the submission before creating any job, and it is safe to retry.
slime::submit() {
  if [[ "${SLIME_DRY_RUN:-0}" == 1 ]]; then
    slime::quote_line "$@"
    return
  fi
  local log attempt status
  log="$(mktemp "${TMPDIR:-/tmp}/slime-submit.XXXXXX")"
  SLIME_TEMP_FILES+=("${log}")
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    status=0
    "$@" 2>&1 | tee "${log}" || status="${PIPESTATUS[0]}"
    if ((status != 0)) && grep -q 'No available agent' "${log}" && ! grep -q 'submitted successfully' "${log}"; then
      slime::warn "Ray's dashboard agent is not up yet; submitting again (attempt ${attempt})"
      sleep 3
      continue
    fi
    return "${status}"
  done
  return "${status}"
}

# Adds to the caller's `problems` what a run on several nodes lacks; sets the caller's `workers`.
slime::check_nodes() {
  local nodes="$1" gpus_per_node="$2"
  workers=()
  if [[ -z "${RAY_ADDRESS:-}" ]] && ((nodes > 1)); then
    [[ -n "${MASTER_ADDR:-}" ]] ||
      problems+=("MASTER_ADDR is not set: this run spans ${nodes} nodes and the workers join the head there")
    if [[ -z "${HOSTFILE:-}" ]]; then
      problems+=("HOSTFILE is not set: list the $((nodes - 1)) worker hosts, one per line (or set RAY_ADDRESS to use a running cluster)")
    elif [[ ! -r "${HOSTFILE}" ]]; then
      problems+=("HOSTFILE ${HOSTFILE} cannot be read")
    else
      mapfile -t workers < <(slime::workers)
      local host
      for host in "${workers[@]}"; do
        [[ "${host}" != -* ]] ||
          problems+=("HOSTFILE ${HOSTFILE} lists '${host}', which starts with '-' and would reach ssh as an option: list host names only")
      done
      ((${#workers[@]} >= nodes - 1)) ||
        problems+=("HOSTFILE ${HOSTFILE} lists ${#workers[@]} worker(s); this run needs $((nodes - 1))")
      workers=("${workers[@]:0:nodes-1}")
    fi
  fi
  if [[ "${SLIME_DRY_RUN:-0}" != 1 && -z "${RAY_ADDRESS:-}" ]] && command -v nvidia-smi >/dev/null 2>&1; then
    local present
    present="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)"
    ((present >= gpus_per_node)) || problems+=("this node has ${present} GPU(s); the run needs ${gpus_per_node} per node")
  fi
}

# Adds to the caller's `problems` every worker host of the caller's `workers` that ssh cannot reach
# or log in to, with ssh's own error; the hosts are asked at once, before anything is started.
slime::check_workers_reachable() {
  ((${#workers[@]})) || return 0
  local host index pids=() logs=() status detail
  for index in "${!workers[@]}"; do
    logs+=("$(mktemp "${TMPDIR:-/tmp}/slime-ssh-check.XXXXXX")")
    SLIME_TEMP_FILES+=("${logs[index]}")
    ssh -o BatchMode=yes -o ConnectTimeout="${SLIME_SSH_TIMEOUT:-10}" "${workers[index]}" true \
      </dev/null >"${logs[index]}" 2>&1 &
    pids+=("$!")
  done
  for index in "${!workers[@]}"; do
    host="${workers[index]}"
    status=0
    wait "${pids[index]}" || status=$?
    ((status != 0)) || continue
    detail="$(tr -d '\r' <"${logs[index]}" | sed '/^[[:space:]]*$/d' | tail -n 3 | paste -sd ' ' -)"
    problems+=("worker host ${host} (HOSTFILE ${HOSTFILE}) cannot be reached over ssh (ssh ${host} true exits ${status}): ${detail:-no output}")
  done
}

# The ports a head started here binds, each after the variable that moves it.
slime::head_ports() {
  printf '%s\n' "RAY_PORT ${RAY_PORT:-6379}" "RAY_DASHBOARD_PORT ${RAY_DASHBOARD_PORT:-8265}" \
    "RAY_AGENT_PORT ${RAY_AGENT_PORT:-52365}" "RAY_CLIENT_PORT ${RAY_CLIENT_PORT:-10001}"
}

# Adds to the caller's `problems` every port of the head that is not a port number, is given
# twice, or is taken on this node (by another Ray cluster, say), with a free one to use instead.
slime::check_ports() {
  local variable port ports=() seen=" " taken suggestion
  while read -r variable port; do
    if [[ ! "${port}" =~ ^[0-9]+$ ]] || ((10#${port} < 1 || 10#${port} > 65535)); then
      problems+=("${variable}=${port} is not a port number (1-65535)")
    elif [[ "${seen}" == *" ${port} "* ]]; then
      problems+=("${variable}=${port}: that port is already given to another of RAY_PORT, RAY_DASHBOARD_PORT, RAY_AGENT_PORT, RAY_CLIENT_PORT")
    else
      seen+="${port} "
      ports+=("${variable}:${port}")
    fi
  done < <(slime::head_ports)
  ((${#ports[@]})) || return 0
  while read -r taken suggestion; do
    for variable in "${ports[@]}"; do
      [[ "${variable#*:}" == "${taken}" ]] || continue
      problems+=("port ${taken} (${variable%%:*}) is in use on this node, perhaps by another Ray cluster: set ${variable%%:*} to a free port (${suggestion} is free now), or set RAY_ADDRESS to submit to that cluster on purpose")
    done
  done < <("${python}" -m slime.utils.ports "${ports[@]#*:}")
}

# The head here, from the repository root (the job runs where Ray was started), then the caller's
# `workers` over ssh; each `ray start --block` is remembered so cleanup stops exactly these. The
# head carries a resource named after this launch, so the cluster the job goes to is known to be it.
slime::start_ray() {
  local gpus_per_node="$1" head="${MASTER_ADDR:-127.0.0.1}" port="${RAY_PORT:-6379}" ray_bin host remote marker index
  marker="slime_launch_$$_${RANDOM}${RANDOM}"
  ray_bin="$(command -v ray || echo ray)" # workers run it by absolute path: ssh's PATH may lack it
  slime::run cd "${SLIME_ROOT}"
  slime::ensure_ray_token
  [[ "${SLIME_DRY_RUN:-0}" == 1 ]] || slime::remember_current_cluster "${port}"
  slime::progress "starting a Ray head at ${head}:${port}"
  slime::run_background ray start --head --node-ip-address "${head}" --port "${port}" \
    --dashboard-host "${head}" --dashboard-port "${RAY_DASHBOARD_PORT:-8265}" \
    --dashboard-agent-listen-port "${RAY_AGENT_PORT:-52365}" --ray-client-server-port "${RAY_CLIENT_PORT:-10001}" \
    --num-gpus "${gpus_per_node}" --resources "{\"${marker}\": 1}" \
    --disable-usage-stats --block
  local head_pid=""
  ((${#SLIME_STARTED_PIDS[@]} == 0)) || head_pid="${SLIME_STARTED_PIDS[${#SLIME_STARTED_PIDS[@]} - 1]}"
  slime::wait_for_ray "http://${head}:${RAY_DASHBOARD_PORT:-8265}" "${head_pid}" "${marker}"
  slime::progress "Ray is up at http://${head}:${RAY_DASHBOARD_PORT:-8265}"
  ((${#workers[@]})) || return 0
  # Each worker carries a resource named after this launch and its place in HOSTFILE, by which the
  # wait below knows which hosts have joined. The remote command is run by the user's login shell
  # there: `env` sets RAY_AUTH_MODE whatever that shell is (a worker without it is refused by the head).
  local worker_pids=() worker_markers=()
  for index in "${!workers[@]}"; do
    host="${workers[index]}"
    worker_markers+=("${marker}_w$((index + 1))")
    remote="cd $(printf '%q' "${SLIME_ROOT}") && $(slime::quote_line env "RAY_AUTH_MODE=${RAY_AUTH_MODE}" \
      "${ray_bin}" start --address "${head}:${port}" --num-gpus "${gpus_per_node}" \
      --resources "{\"${worker_markers[index]}\": 1}" --disable-usage-stats --block)"
    local SLIME_BACKGROUND_LOG=""
    if [[ "${SLIME_DRY_RUN:-0}" != 1 ]]; then
      SLIME_BACKGROUND_LOG="$(mktemp "${TMPDIR:-/tmp}/slime-ssh-${host//[^A-Za-z0-9._-]/_}.XXXXXX")"
      SLIME_WORKER_LOGS+=("${SLIME_BACKGROUND_LOG}")
    fi
    slime::run_background ssh -tt "${host}" "${remote}"
    ((${#SLIME_STARTED_PIDS[@]} == 0)) || worker_pids+=("${SLIME_STARTED_PIDS[${#SLIME_STARTED_PIDS[@]} - 1]}")
  done
  slime::wait_for_workers "http://${head}:${RAY_DASHBOARD_PORT:-8265}"
}

# The last lines of a worker's ssh log, colours and carriage returns (ssh -tt) removed, indented.
slime::log_tail() {
  tr -d '\r' <"$1" | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' | tail -n "${2:-5}" | sed 's/^/    /'
}

# Wait until every worker host of the caller's `workers` has joined the head (its marker resource is
# in the cluster), at most SLIME_JOIN_TIMEOUT seconds; the job is submitted only then, since the
# trainer places the run on the GPUs it finds when it starts. A worker whose ssh session ends, or
# whom the head refuses, stops the launch at once, named with its ssh log; at the deadline, so do
# those still missing. Uses the caller's `worker_pids` and `worker_markers`.
slime::wait_for_workers() {
  local dashboard="$1" timeout="${SLIME_JOIN_TIMEOUT:-180}" deadline index status answer missing=() lines=() names=()
  [[ "${SLIME_DRY_RUN:-0}" == 1 ]] && return 0
  deadline=$((SECONDS + timeout))
  slime::progress "waiting for ${#workers[@]} worker host(s) to join: ${workers[*]}"
  while true; do
    for index in "${!workers[@]}"; do
      if ! slime::is_running_child "${worker_pids[index]}"; then
        status=0
        wait "${worker_pids[index]}" || status=$?
        SLIME_KEEP_WORKER_LOGS=1
        mapfile -t lines < <(slime::log_tail "${SLIME_WORKER_LOGS[index]}")
        slime::die "worker host ${workers[index]} did not join the Ray head at ${head}:${port}: its ssh session ended (exit ${status}); nothing was submitted. The last lines of its ssh log ${SLIME_WORKER_LOGS[index]}:" "${lines[@]}"
      fi
      if grep -q 'InvalidAuthToken\|AuthenticationError' "${SLIME_WORKER_LOGS[index]}"; then
        SLIME_KEEP_WORKER_LOGS=1
        mapfile -t lines < <(slime::log_tail "${SLIME_WORKER_LOGS[index]}" 2)
        slime::die "worker host ${workers[index]} was refused by the Ray head at ${head}:${port}: its Ray token differs from this node's (${RAY_AUTH_TOKEN_PATH:-~/.ray/auth_token}); copy this node's token to that host. Nothing was submitted. Its ssh log ${SLIME_WORKER_LOGS[index]}:" "${lines[@]}"
      fi
    done
    status=0
    answer="$("${python:-${PYTHON:-python3}}" -m slime.utils.ray_ready "${dashboard}" \
      --missing "${worker_markers[@]}" --within 3)" || status=$?
    mapfile -t missing <<<"${answer}"
    ((status <= 1)) || slime::die "could not ask the Ray dashboard at ${dashboard} which worker hosts have joined (exit ${status}); nothing was submitted"
    if ((status == 0)); then
      slime::progress "every worker host joined: ${workers[*]}"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      SLIME_KEEP_WORKER_LOGS=1
      lines=()
      names=()
      for index in "${!workers[@]}"; do
        [[ " ${missing[*]} " == *" ${worker_markers[index]} "* ]] || continue
        names+=("${workers[index]}")
        lines+=("${workers[index]}: its ssh log ${SLIME_WORKER_LOGS[index]} ends:" "$(slime::log_tail "${SLIME_WORKER_LOGS[index]}" 3)")
      done
      slime::die "worker host(s) ${names[*]} did not join the Ray head at ${head}:${port} within ${timeout} s (SLIME_JOIN_TIMEOUT); nothing was submitted." "${lines[@]}"
    fi
  done
}

# `ray start --head` records its cluster in Ray's "current cluster" file, which a plain `ray status`
# then reads; once the launcher's cluster is gone that would point at a dead one. The file is put
# back as it was, unless it names another cluster by then.
slime::remember_current_cluster() {
  SLIME_RAY_CURRENT="${RAY_TMPDIR:-${TMPDIR:-/tmp}}/ray/ray_current_cluster"
  SLIME_RAY_CURRENT_PORT="$1"
  SLIME_RAY_CURRENT_BEFORE=""
  SLIME_RAY_CURRENT_EXISTED=0
  if [[ -f "${SLIME_RAY_CURRENT}" ]]; then
    SLIME_RAY_CURRENT_BEFORE="$(cat "${SLIME_RAY_CURRENT}")"
    SLIME_RAY_CURRENT_EXISTED=1
  fi
}

slime::restore_current_cluster() {
  [[ -n "${SLIME_RAY_CURRENT:-}" && -f "${SLIME_RAY_CURRENT}" ]] || return 0
  [[ "$(cat "${SLIME_RAY_CURRENT}")" == *":${SLIME_RAY_CURRENT_PORT}" ]] || return 0
  if ((SLIME_RAY_CURRENT_EXISTED)); then
    printf '%s' "${SLIME_RAY_CURRENT_BEFORE}" >"${SLIME_RAY_CURRENT}"
  else
    rm -f -- "${SLIME_RAY_CURRENT}"
  fi
}

# Ray enables token authentication for new local clusters when it finds a token; the launcher says
# so explicitly (RAY_AUTH_MODE=token unless set), so every ray command here, the workers and the job
# agree, and creates the token (~/.ray/auth_token) when there is none. Workers need the same token.
slime::ensure_ray_token() {
  [[ "${RAY_AUTH_MODE}" == token ]] || return 0
  [[ -n "${RAY_AUTH_TOKEN:-}" ]] && return 0
  local token="${RAY_AUTH_TOKEN_PATH:-${HOME:-}/.ray/auth_token}" mode
  if [[ -s "${token}" ]]; then
    # A token others can read lets them join the cluster or submit jobs to it: it is tightened first.
    mode="$(stat -c '%a' "${token}")"
    if ((8#${mode} & 8#077)); then
      if [[ "${SLIME_DRY_RUN:-0}" == 1 ]]; then
        printf '# Ray token %s is readable by others (mode %s): a launch makes it private (chmod 600)\n' "${token}" "${mode}"
      else
        chmod 600 "${token}" 2>/dev/null ||
          slime::die "Ray's token ${token} is readable by others (mode ${mode}) and cannot be made private: chmod 600 it (or use another RAY_AUTH_TOKEN_PATH); nothing was started"
        slime::warn "Ray's token ${token} was readable by others (mode ${mode}): made private (0600)"
      fi
    fi
    return 0
  fi
  if [[ "${SLIME_DRY_RUN:-0}" == 1 ]]; then
    slime::quote_line ray get-auth-token --generate
  else
    # A secret: readable by its owner only, whatever the umask (Ray itself would leave it 0644).
    (umask 077 && ray get-auth-token --generate >/dev/null)
  fi
}

# The argv (all arrays, in order) and SLIME_JOB_ENV of an args file, NUL-separated, each preceded
# by its length; variables named after the file get placeholder values.
slime::read_arrays() (
  local file="$1" name array elements argv=()
  shift
  for name in "$@"; do
    export "${name}=<${name} unset>"
  done
  SLIME_ARG_ARRAYS=()
  SLIME_JOB_ENV=()
  SLIME_ENTRY_POINT=train.py
  # shellcheck source=/dev/null
  source "${file}" >/dev/null
  [[ "${SLIME_ARGS_COMPLETE:-}" == 1 ]] || exit 1
  for array in "${SLIME_ARG_ARRAYS[@]}"; do
    elements="${array}[@]"
    argv+=("${!elements}")
  done
  printf '%s\0' "${SLIME_ENTRY_POINT}" "${#argv[@]}" "${argv[@]}" "${#SLIME_JOB_ENV[@]}" "${SLIME_JOB_ENV[@]}"
)

# Wait until the dashboard at $1 takes job submissions and is this launch's: its cluster has the
# head's marker resource ($3). A dashboard that answers without it belongs to another cluster
# (one that took the port after the check, say): the launcher stops and submits nothing. One
# small Python process asks the dashboard over HTTP for a few seconds at a time
# (slime.utils.ray_ready), so the head's own processes keep the CPU while they start.
slime::wait_for_ray() {
  local dashboard="$1" pid="$2" marker="$3" deadline=$((SECONDS + 120)) status
  [[ "${SLIME_DRY_RUN:-0}" == 1 ]] && return 0
  while true; do
    slime::is_running_child "${pid}" || slime::die "ray start failed (see above); nothing was submitted"
    status=0
    "${python:-${PYTHON:-python3}}" -m slime.utils.ray_ready "${dashboard}" "${marker}" --within 5 || status=$?
    case "${status}" in
      0) return 0 ;;
      2) slime::die "the Ray dashboard at ${dashboard} belongs to another cluster, not to the head started here: nothing was submitted. Set RAY_DASHBOARD_PORT to a free port, or RAY_ADDRESS=${dashboard} to submit to that cluster on purpose" ;;
      1) ;;
      *) slime::die "could not ask the Ray dashboard at ${dashboard} whether it is up (exit ${status}); nothing was submitted" ;;
    esac
    ((SECONDS < deadline)) || slime::die "Ray did not come up at ${dashboard} within 120 s; nothing was submitted"
  done
}
