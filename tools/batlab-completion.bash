# bash completion for batlab                                 -*- shell-script -*-
#
# Install: copy to /usr/share/bash-completion/completions/batlab (or
# ~/.local/share/bash-completion/completions/batlab), or source it from
# ~/.bashrc. Register names come from `batlab read --list`, so they always
# match the binary's own table. The commands and each one's options are
# kept equal to `batlab --help` and `batlab COMMAND --help` by
# tests/lua/test_completion.lua.

_batlab_registers()
{
	# $1: a namespace as typed (cell2, UNIT, comms, 4, ...)
	local ns kind
	ns=$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')
	case $ns in
		CELL[0-3]|[0-3]) kind=CELL ;;
		UNIT|4) kind=UNIT ;;
		BOOTLOADER|5) kind=BOOTLOADER ;;
		COMMS|255|0XFF) kind=COMMS ;;
		*) return ;;
	esac
	"$2" read --list 2>/dev/null | awk -v k="$kind" '$1 == k { print $3 }'
}

# The options of a command ($1; $2 its subcommand for firmware and
# calibration), as its --help lists them.
_batlab_options()
{
	local devopts="--port --serial --sim --sim= --devices --seed --connect-timeout
		-v --verbose -vv -h --help"
	local runopts="--settings --cell --cells-from --set --experiment --out --sim --sim= --devices --seed
		--port --serial --timeout --swap-timeout --speed --record --gzip --json --quiet --no-report --db --mqtt -h --help"
	case $1 in
		list|info|measure|setpoints|write|impedance|sinewave|stop|reset|lowcurrent)
			echo "$devopts" ;;
		read) echo "$devopts --list" ;;
		charge|discharge) echo "$devopts --for" ;;
		firmware)
			case $2 in
				check) echo "--from -h --help" ;;
				update) echo "$devopts --from --force" ;;
				*) echo "$devopts" ;;
			esac ;;
		calibration)
			if [[ $2 == backup ]]; then echo "$devopts --force"; else echo "$devopts"; fi ;;
		run|cycletest|dischargetest) echo "$runopts" ;;
		resume) echo "--port --db --mqtt --quiet --json -h --help" ;;
		shell) echo "-e --sim --sim= --devices --seed --port --serial -h --help" ;;
		sim) echo "--pty --describe --devices --layout --seed --speed -h --help" ;;
		lua) echo "-e -h --help" ;;
		settings) echo "--set -h --help" ;;
		report) echo "--out --compare --db -h --help" ;;
		db) echo "--db -h --help" ;;
		runs) echo "--db --cell --since -h --help" ;;
		analyze) echo "--bin-mv --capacity --min-step-ah --smooth -h --help" ;;
		match) echo "--series --parallel --out -h --help" ;;
		check) echo "--set --cell --sim --sim= --devices --seed --out -h --help" ;;
	esac
}

_batlab()
{
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion -s || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD-1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi

	local bin=${words[0]}
	local commands="run check cycletest dischargetest resume settings report analyze match db runs shell sim lua list info measure setpoints
		read write impedance charge discharge sinewave stop reset lowcurrent firmware
		calibration"
	local cells="0 1 2 3 CELL0 CELL1 CELL2 CELL3"
	local namespaces="CELL0 CELL1 CELL2 CELL3 UNIT BOOTLOADER COMMS"
	local modes="NO_CELL BACKWARDS IDLE CHARGE DISCHARGE IMPEDANCE STOPPED"
	# Options that take the next word as their value.
	local valued="--port --serial --devices --seed --connect-timeout --timeout --for
		--layout --speed --settings --cell --cells-from --set --out --from -e --db --mqtt --since"

	if [[ $cword -eq 1 ]]; then
		COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
		return
	fi

	case $prev in
		--port)
			COMPREPLY=($(compgen -f -- "${cur:-/dev/tty}"))
			return ;;
		--layout|--settings|--out|--cells-from|--experiment)
			COMPREPLY=($(compgen -f -- "$cur"))
			return ;;
		--serial|--devices|--seed|--connect-timeout|--timeout|--swap-timeout|--record|--for|--speed|--cell|--set|--from|-e|--db|--mqtt|--since|--bin-mv|--capacity|--min-step-ah|--smooth|--series|--parallel)
			return ;;
	esac
	if [[ $cur == --sim=* ]]; then
		COMPREPLY=($(compgen -f -P "--sim=" -- "${cur#--sim=}"))
		return
	fi

	# Positional arguments of the command so far (options and their values
	# skipped).
	local cmd=${words[1]} i args=()
	for ((i = 2; i < cword; i++)); do
		if [[ " ${valued//$'\n'/ } " == *" ${words[i]} "* ]]; then
			((i++))
		elif [[ ${words[i]} != -* ]]; then
			args+=("${words[i]}")
		fi
	done
	local n=${#args[@]}

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_batlab_options "$cmd" "${args[0]}")" -- "$cur"))
		return
	fi

	case $cmd in
		measure|setpoints|stop|reset|charge|discharge)
			[[ $n -eq 0 ]] && COMPREPLY=($(compgen -W "$cells all" -- "$cur")) ;;
		impedance|sinewave)
			[[ $n -eq 0 ]] && COMPREPLY=($(compgen -W "$cells" -- "$cur")) ;;
		read|write)
			if [[ $n -eq 0 ]]; then
				COMPREPLY=($(compgen -W "$namespaces" -- "${cur^^}"))
			elif [[ $n -eq 1 ]]; then
				COMPREPLY=($(compgen -W "$(_batlab_registers "${args[0]}" "$bin")" -- "${cur^^}"))
			elif [[ $cmd == write && $n -eq 2 && ${args[1]^^} == MODE ]]; then
				COMPREPLY=($(compgen -W "$modes" -- "${cur^^}"))
			fi ;;
		report|analyze|match)
			COMPREPLY=($(compgen -d -- "$cur")) ;;
		firmware)
			if [[ $n -eq 0 ]]; then
				COMPREPLY=($(compgen -W "load check update" -- "$cur"))
			elif [[ $n -eq 1 && ${args[0]} == load ]]; then
				COMPREPLY=($(compgen -f -- "$cur"))
			fi ;;
		calibration)
			if [[ $n -eq 0 ]]; then
				COMPREPLY=($(compgen -W "backup restore" -- "$cur"))
			else
				COMPREPLY=($(compgen -f -- "$cur"))
			fi ;;
		db)
			if [[ $n -eq 0 ]]; then
				COMPREPLY=($(compgen -W "init push" -- "$cur"))
			elif [[ ${args[0]} == push ]]; then
				COMPREPLY=($(compgen -d -- "$cur"))
			fi ;;
		settings)
			if [[ $n -eq 0 ]]; then
				COMPREPLY=($(compgen -W "view" -- "$cur"))
			else
				COMPREPLY=($(compgen -f -- "$cur"))
			fi ;;
		run|check|lua|shell)
			COMPREPLY=($(compgen -f -- "$cur")) ;;
	esac
}

complete -F _batlab batlab
