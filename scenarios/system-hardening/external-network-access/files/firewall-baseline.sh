#!/bin/sh
# Keeps the node's packet filter as the lab found it (`save`), and takes back what was added
# since (`restore`): rules added to the chains packets for the node pass (INPUT, PREROUTING),
# chains of one's own, changed policies, nftables tables of one's own. What Kubernetes keeps
# there (kube-proxy's and kube-router's KUBE-* chains and their jumps) is left alone: they
# rewrite those themselves.
set -u
dir={{ state_dir }}
mkdir -p "$dir"
rules() { awk '/^\*/ { t = substr($0, 2) } /^-A / { print t " " $0 }'; }
chains() { awk '/^\*/ { t = substr($0, 2) } /^:/ { print t " " substr($1, 2) " " $2 }'; }
case ${1:-} in
save)
  for m in nft legacy; do
    command -v "iptables-$m-save" >/dev/null 2>&1 || continue
    "iptables-$m-save" 2>/dev/null >"$dir/$m.save"
    rules <"$dir/$m.save" >"$dir/$m.rules"
    chains <"$dir/$m.save" >"$dir/$m.chains"
  done
  nft list tables 2>/dev/null >"$dir/nft.tables" || true
  ;;
restore)
  for m in nft legacy; do
    [ -f "$dir/$m.rules" ] || continue
    tool=iptables-$m
    now=$("$tool-save" 2>/dev/null)
    echo "$now" | rules | grep -vxF -f "$dir/$m.rules" | while IFS= read -r line; do
      table=${line%% *}
      rule=${line#* }
      case $rule in *KUBE-* | *kube-router* | *kubernetes*) continue ;; esac
      eval "$tool -t $table -D ${rule#-A }" || echo "could not delete: $line" >&2
    done
    new=""
    echo "$now" | chains >"$dir/$m.chains.now"
    while read -r table chain policy; do
      case $chain in KUBE-*) continue ;; esac
      before=$(awk -v t="$table" -v c="$chain" '$1 == t && $2 == c { print $3 }' "$dir/$m.chains")
      if [ -z "$before" ]; then
        new="$new $table:$chain"
      elif [ "$before" != - ] && [ "$before" != "$policy" ]; then
        "$tool" -t "$table" -P "$chain" "$before"
      fi
    done <"$dir/$m.chains.now"
    # Flush every chain of one's own first: one may jump to another.
    for tc in $new; do "$tool" -t "${tc%%:*}" -F "${tc#*:}"; done
    for tc in $new; do "$tool" -t "${tc%%:*}" -X "${tc#*:}" || echo "could not remove chain $tc" >&2; done
  done
  if [ -f "$dir/nft.tables" ]; then
    nft list tables 2>/dev/null | grep -vxF -f "$dir/nft.tables" | while read -r _ family name; do
      nft delete table "$family" "$name" || echo "could not delete nft table $family $name" >&2
    done
  fi
  ;;
*)
  echo "usage: $0 save|restore" >&2
  exit 2
  ;;
esac
