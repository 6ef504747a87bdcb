#!/usr/bin/env bash
# Post FILE as a comment on pull request PR, or update the comment posted earlier under the same KEY,
# so that every push refreshes one comment instead of adding another.
#
#   pr-comment.sh PR KEY FILE        (needs GH_TOKEN and GITHUB_REPOSITORY, as in GitHub Actions)
set -euo pipefail
pr=$1 key=$2 file=$3
marker="<!-- ${key} -->"
body=$(printf '%s\n%s' "$marker" "$(cat "$file")")
existing=$(gh api --paginate "repos/${GITHUB_REPOSITORY}/issues/${pr}/comments" \
  --jq ".[] | select(.body | startswith(\"${marker}\")) | .id" | tail -n 1)
if [ -n "$existing" ]; then
  gh api --method PATCH "repos/${GITHUB_REPOSITORY}/issues/comments/${existing}" -f body="$body" > /dev/null
else
  gh api --method POST "repos/${GITHUB_REPOSITORY}/issues/${pr}/comments" -f body="$body" > /dev/null
fi
