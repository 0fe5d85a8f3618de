#!/usr/bin/env bash
# A whole vzsandbox on this machine: installs what is missing, builds, starts a lab of four
# hosts (two hypervisors, a balancer, a gateway: LXC system containers on a private bridge),
# deploys every role to them with `vzsb deploy`, and tells how to log in as a student.
# Run as root on Debian 12. Again later: it reuses the lab and deploys again (nothing changes).
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=${VZSB_LAB:-sandbox}
scripts/install-deps.sh
vzsb() { node bin/vzsb.js "$@"; }
if vzsb lab show "$LAB" >/dev/null 2>&1; then
  echo "lab $LAB is already up"
else
  vzsb lab up "$LAB" --sandbox
fi
INVENTORY=/var/lib/vzsandbox/labs/$LAB/inventory.yaml
vzsb deploy "$INVENTORY"
LOGIN="node bin/vzsb.js lab login student1$([ "$LAB" = sandbox ] || echo " --lab $LAB")"
cat <<TXT

The sandbox is deployed. Try:
  $LOGIN                         # a root shell in a fresh container (student1..student3)
  node bin/vzsb.js pools status -i $INVENTORY
  node bin/vzsb.js sessions -i $INVENTORY
  node bin/vzsb.js pools reset --all -i $INVENTORY
  node bin/vzsb.js lab down $LAB                         # removes every trace of the lab
TXT
