#!/bin/bash
# Entrypoint of the nginx stand-in (see the Dockerfile): renders the templates as the official
# image does before starting nginx, then runs the command.
set -euo pipefail

if [[ ${1:-} == nginx || ${1:-} == nginx-debug ]]; then
  template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
  suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
  output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
  filter=${NGINX_ENVSUBST_FILTER:-}
  if [[ -d $template_dir ]]; then
    # Only variables that are defined (and match the filter) are replaced: `$host`,
    # `$request_id` and the other nginx variables in a template are left as they are.
    defined=""
    while IFS= read -r name; do
      [[ -z $filter || $name =~ $filter ]] && defined+="\${$name} "
    done < <(compgen -e)
    while IFS= read -r -d '' template; do
      relative=${template#"$template_dir"/}
      output=$output_dir/${relative%"$suffix"}
      mkdir -p "$(dirname "$output")"
      echo "${0##*/}: rendering $template to $output" >&2
      envsubst "$defined" <"$template" >"$output"
    done < <(find "$template_dir" -follow -type f -name "*$suffix" -print0)
  fi
fi
exec "$@"
