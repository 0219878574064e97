# bash completion for batlab                                 -*- shell-script -*-
#
# Install: copy to /usr/share/bash-completion/completions/batlab (or
# ~/.local/share/bash-completion/completions/batlab), or source it from
# ~/.bashrc. Register names come from `batlab read --list`, so they always
# match the binary's own table.

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
	local commands="list info measure setpoints read write impedance charge discharge
		sinewave stop reset lowcurrent firmware calibration run shell sim lua"
	local devopts="--port --serial --sim --sim= --devices --seed --connect-timeout --verbose --help"
	local cells="0 1 2 3"
	local namespaces="CELL0 CELL1 CELL2 CELL3 UNIT BOOTLOADER COMMS"
	local modes="NO_CELL BACKWARDS IDLE CHARGE DISCHARGE IMPEDANCE STOPPED"

	if [[ $cword -eq 1 ]]; then
		COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
		return
	fi

	case $prev in
		--port)
			COMPREPLY=($(compgen -f -- "${cur:-/dev/tty}"))
			return ;;
		--layout|--settings|--out|--cells-from)
			COMPREPLY=($(compgen -f -- "$cur"))
			return ;;
		--serial|--devices|--seed|--timeout|--connect-timeout|--for|--speed)
			return ;;
	esac
	if [[ $cur == --sim=* ]]; then
		COMPREPLY=($(compgen -f -P "--sim=" -- "${cur#--sim=}"))
		return
	fi

	# Positional arguments of the command so far (options skipped).
	local cmd=${words[1]} i args=()
	for ((i = 2; i < cword; i++)); do
		case ${words[i]} in
			--port|--serial|--devices|--seed|--timeout|--connect-timeout|--for|--layout|--speed) ((i++)) ;;
			-*) ;;
			*) args+=("${words[i]}") ;;
		esac
	done
	local n=${#args[@]}

	if [[ $cur == -* ]]; then
		local extra=""
		case $cmd in
			read) extra="--list" ;;
			charge|discharge) extra="--for" ;;
			calibration) extra="--force" ;;
			sim) COMPREPLY=($(compgen -W "--pty --describe --devices --layout --seed --speed --help" -- "$cur")); return ;;
		esac
		COMPREPLY=($(compgen -W "$devopts $extra" -- "$cur"))
		return
	fi

	case $cmd in
		measure|setpoints|stop|reset)
			[[ $n -eq 0 ]] && COMPREPLY=($(compgen -W "$cells" -- "$cur")) ;;
		impedance|sinewave)
			[[ $n -eq 0 ]] && COMPREPLY=($(compgen -W "$cells" -- "$cur")) ;;
		charge|discharge)
			[[ $n -eq 0 ]] && COMPREPLY=($(compgen -W "$cells all" -- "$cur")) ;;
		read|write)
			if [[ $n -eq 0 ]]; then
				COMPREPLY=($(compgen -W "$namespaces" -- "${cur^^}"))
			elif [[ $n -eq 1 ]]; then
				COMPREPLY=($(compgen -W "$(_batlab_registers "${args[0]}" "$bin")" -- "${cur^^}"))
			elif [[ $cmd == write && $n -eq 2 && ${args[1]^^} == MODE ]]; then
				COMPREPLY=($(compgen -W "$modes" -- "${cur^^}"))
			fi ;;
		firmware)
			if [[ $n -eq 0 ]]; then
				COMPREPLY=($(compgen -W "load" -- "$cur"))
			else
				COMPREPLY=($(compgen -f -- "$cur"))
			fi ;;
		calibration)
			if [[ $n -eq 0 ]]; then
				COMPREPLY=($(compgen -W "backup restore" -- "$cur"))
			else
				COMPREPLY=($(compgen -f -- "$cur"))
			fi ;;
		run|lua)
			COMPREPLY=($(compgen -f -- "$cur")) ;;
	esac
}

complete -F _batlab batlab
