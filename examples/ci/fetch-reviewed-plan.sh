#!/usr/bin/env bash
# Download the plan that was reviewed in the pull request merged as COMMIT: the artifact
# "reconciler-plan" of the last successful pull-request run of this workflow for that pull request.
# Fails when the commit came from no pull request, or the pull request has no successful plan.
#
#   fetch-reviewed-plan.sh COMMIT OUT    (needs GH_TOKEN, GITHUB_REPOSITORY, GITHUB_WORKFLOW_REF)
set -euo pipefail
commit=$1 out=$2
workflow=$(basename "${GITHUB_WORKFLOW_REF%%@*}")
pr=$(gh api "repos/${GITHUB_REPOSITORY}/commits/${commit}/pulls" --jq '.[0].number // empty')
if [ -z "$pr" ]; then
  echo "::error::${commit} was not merged from a pull request, so no plan was reviewed for it" >&2
  exit 1
fi
head=$(gh api "repos/${GITHUB_REPOSITORY}/pulls/${pr}" --jq '.head.sha')
run=$(gh run list --workflow "$workflow" --event pull_request --commit "$head" --status success \
  --limit 1 --json databaseId --jq '.[0].databaseId // empty')
if [ -z "$run" ]; then
  echo "::error::pull request #${pr} has no successful plan for its last commit ${head}" >&2
  exit 1
fi
dir=$(mktemp -d)
gh run download "$run" --name reconciler-plan --dir "$dir"
mv "$dir/plan.json" "$out"
echo "Applying the plan reviewed in pull request #${pr} (run ${run}, commit ${head})."
