#!/usr/bin/env bash
# Deploy the app under your domain, with your address for the alarms: scripts/deploy.sh --help
# (docs/deployment-guide.md, step 4). It records the inputs with the inventory (scripts/deploy_vars.py), then
# runs `make deploy` on the sandbox, site.yml elsewhere, and prints the endpoints (scripts/endpoints.py).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
Usage: scripts/deploy.sh --domain NAME --email ADDRESS [--inventory sandbox|production|PATH] [--check]

Deploys the whole stack (site.yml) with NAME as the public hosted zone (public_zone_name: the dns role finds
the zone or creates it) and ADDRESS as the alarm recipient (alarm_notification_emails), then prints the
endpoints: the CloudFront URL, the zone and the name servers to delegate NAME to, app.NAME, each region's
load balancer and each alarm subscription with its status. NAME and ADDRESS are recorded with the inventory
(group_vars/all/zz-deploy-inputs.yml), so failover.yml, the failover controller and teardown use them too.

  --domain NAME        a DNS name with at least one dot, in lower case, no scheme, path or trailing dot
                       (app.example.com)
  --email ADDRESS      who receives the alarms; AWS mails a link to confirm the subscription
  --inventory WHICH    sandbox (default: the local sandbox, as `make deploy`), production
                       (inventories/production/hosts.yml, the AWS account of your credentials) or the path
                       of an inventory file
  --check              run site.yml with --check --diff: show what would change, change nothing (and
                       record nothing)
  -h, --help           this text

With NAME comes TLS (request_certificates: true, recorded too; playbooks/certificates.yml): ACM certificates for
NAME and app.NAME (CloudFront's, in us-east-1) and for origin-<region>.NAME and origin.NAME (each region's ALB),
validated by the CNAMEs ACM asks for, written into the zone. The ALBs then listen on HTTPS only (HTTP redirects),
CloudFront reaches them over HTTPS by their origin names, and serves https://NAME and https://app.NAME, which
alias it. On AWS, ACM sees the records only once NAME is delegated to the zone's name servers: a first run on a
new zone waits for that up to 15 minutes, then stops naming the records; delegate NAME and run it again
(docs/deployment-guide.md, step 4). Production also needs app_image_tag set to an image you pushed (step 5).
EOF
}

refuse() {
  echo "deploy: $1" >&2
  echo "deploy: see scripts/deploy.sh --help" >&2
  exit 2
}

domain="" email="" inventory="sandbox" check=false
have_domain=false have_email=false
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --domain | --email | --inventory)
      [ $# -ge 2 ] || refuse "$1 needs a value"
      case "$1" in
        --domain) domain=$2 have_domain=true ;;
        --email) email=$2 have_email=true ;;
        --inventory) inventory=$2 ;;
      esac
      shift 2 ;;
    --domain=*) domain=${1#*=} have_domain=true; shift ;;
    --email=*) email=${1#*=} have_email=true; shift ;;
    --inventory=*) inventory=${1#*=}; shift ;;
    --check) check=true; shift ;;
    *) refuse "unknown argument '$1': scripts/deploy.sh takes --domain, --email, --inventory, --check and --help" ;;
  esac
done
$have_domain || refuse "--domain is required: the public zone's name, e.g. --domain app.example.com"
$have_email || refuse "--email is required: who receives the alarms, e.g. --email oncall@example.com"

case "$inventory" in
  sandbox) inventory=inventories/sandbox/hosts.yml ;;
  production) inventory=inventories/production/hosts.yml ;;
  *)
    [ -f "$inventory" ] || refuse "--inventory '$inventory' is neither sandbox, production nor an inventory file that exists (give its path, e.g. inventories/production/hosts.yml)" ;;
esac

# Checked before the set-up, with the system's Python (deploy_vars.py needs only the standard library), so a
# typo costs nothing. It prints the JSON extra vars.
python=.venv/bin/python
[ -x "$python" ] || python=python3
extra=$("$python" scripts/deploy_vars.py --domain="$domain" --email="$email") || exit 2

scripts/bootstrap.sh >/dev/null
is_sandbox=$(.venv/bin/python -c 'import sys
from scripts.deployment import read_inventory
print("yes" if read_inventory(sys.argv[1]).sandbox else "no")' "$inventory")

if $check; then
  [ "$is_sandbox" = no ] || .venv/bin/python -m sandbox up
  .venv/bin/ansible-playbook -i "$inventory" site.yml --check --diff -e "$extra"
  echo "deploy: --check: nothing was changed; the diff above is what scripts/deploy.sh without --check would do"
  exit 0
fi

# Kept with the inventory, not given for this run only: failover.yml, the controller and teardown find the zone by
# the same name.
.venv/bin/python scripts/deploy_vars.py --write-to "$inventory" --domain="$domain" --email="$email"
if [ "$is_sandbox" = yes ]; then
  # One path with `make deploy`: set-up, sandbox up, site.yml, wait until the edge serves, the controller.
  make --no-print-directory deploy INVENTORY="$inventory"
else
  .venv/bin/ansible-playbook -i "$inventory" site.yml
fi
echo
.venv/bin/python scripts/endpoints.py -i "$inventory"
