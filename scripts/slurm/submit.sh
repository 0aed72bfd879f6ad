#!/usr/bin/env bash
# Submits an evaluation over many scenes as a Slurm job array: one task per shard (each scores
# its share of the scenes and writes a part), then a merge job that starts once every task
# succeeded (--dependency=afterok) and writes the result of one run over all scenes.
#
#   scripts/slurm/submit.sh --shards N --out DIR [--icelens PATH] [--by LIST] [--rank METRIC]
#                           [--sbatch 'EXTRA SBATCH OPTIONS'] -- --model M.pt [--model ...] SCENE.nc...
#
# DIR must be on a filesystem every node sees; give absolute paths for the model and scenes
# if the nodes' working directory differs. Prints "ARRAYJOB MERGEJOB" (the job ids).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shards="" out="" icelens="" extra="" merge_args=()
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --shards) shards="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --icelens) icelens="$2"; shift 2 ;;
    --by|--rank) merge_args+=("$1" "$2"); shift 2 ;;
    --sbatch) extra="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "error: unknown option $1 (evaluate's arguments go after --)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "error: give the models and scenes after --" >&2; exit 2; }
case "$shards" in
  ''|*[!0-9]*|0) echo "error: --shards needs a whole number of at least 1, not \"$shards\"" >&2; exit 2 ;;
esac
[ -n "$out" ] || { echo "error: --out DIR is needed" >&2; exit 2; }
if [ -z "$icelens" ]; then
  icelens="$(command -v icelens || true)"
  [ -n "$icelens" ] || { echo "error: no icelens on PATH; give --icelens PATH" >&2; exit 2; }
fi
mkdir -p "$out/logs"
out="$(cd "$out" && pwd)"
icelens="$(cd "$(dirname "$icelens")" && pwd)/$(basename "$icelens")"
# shellcheck disable=SC2086 # $extra is a list of sbatch options
array=$(sbatch --parsable $extra --array="1-$shards" --output="$out/logs/shard-%a.log" \
  "$here/shard.sbatch" "$out" "$icelens" "$shards" "$@")
array="${array%%;*}"
# shellcheck disable=SC2086
merge=$(sbatch --parsable $extra --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  --output="$out/logs/merge.log" "$here/merge.sbatch" "$out" "$icelens" "$shards" "${merge_args[@]}")
merge="${merge%%;*}"
echo "$array $merge"
