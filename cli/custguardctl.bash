# bash completion for custguardctl(8)                                  -*- shell-script -*-
_custguardctl_zones() {
    custguardctl zone list --names 2>/dev/null
}

_custguardctl_files() {
    if declare -F _filedir >/dev/null; then _filedir; else COMPREPLY=($(compgen -f -- "$cur")); fi
}

_custguardctl() {
    local cur prev words cword
    # bash-completion's helper when installed; plain bash otherwise.
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${words[cword]}
        prev=${words[cword - 1]}
    fi

    local -A subverbs=(
        [policy]="check reload show"
        [zone]="list"
        [user]="allow revoke list"
        [device]="allow revoke list"
        [grant]="add list revoke"
        [print]="held approve reject"
        [printer]="protect unprotect list"
        [edm]="build"
        [report]="leak-scope access"
    )
    local verbs="status policy zone user device grant print printer history events scan edm discover report"

    case $prev in
        --policy|--state-dir|-D|--directory|-p|--path|--schema|--key|--output|-o|--file)
            _custguardctl_files; return ;;
        -z|--zone)
            COMPREPLY=($(compgen -W "$(_custguardctl_zones)" -- "$cur")); return ;;
        -u|--user)
            COMPREPLY=($(compgen -u -- "$cur")); return ;;
        -e|--event)
            COMPREPLY=($(compgen -W "access print admin_change policy_reload lost zone_integrity sensor_mismatch bulk_read" -- "$cur")); return ;;
        -d|--duration)
            COMPREPLY=($(compgen -W "15m 30m 1h 2h 8h 1d" -- "$cur")); return ;;
        --format)
            COMPREPLY=($(compgen -W "text json csv html" -- "$cur")); return ;;
        -S|--since|-U|--until|--discovered-at)
            COMPREPLY=($(compgen -W "today yesterday now -1h -1d" -- "$cur")); return ;;
        --detectors)
            COMPREPLY=($(compgen -W "credit_card my_number email jp_phone jp_address keywords sensitive" -- "$cur")); return ;;
        --encoding)
            COMPREPLY=($(compgen -W "utf-8 cp932" -- "$cur")); return ;;
        --mode)
            COMPREPLY=($(compgen -W "print disk" -- "$cur")); return ;;
        -r|--reason|-c|--comment|-n|--limit|--lines|--threshold|--keywords|--keyword-proximity|--mime-type|--namespace)
            return ;;
    esac

    local verb="" sub="" i
    for ((i = 1; i < cword; i++)); do
        [[ ${words[i]} == -* ]] && continue
        if [[ -z $verb ]]; then verb=${words[i]}
        elif [[ -z $sub && -n ${subverbs[$verb]} ]]; then sub=${words[i]}; break
        fi
    done

    if [[ -z $verb ]]; then
        COMPREPLY=($(compgen -W "$verbs --help --version" -- "$cur")); return
    fi
    if [[ -n ${subverbs[$verb]} && -z $sub ]]; then
        COMPREPLY=($(compgen -W "${subverbs[$verb]} --help" -- "$cur")); return
    fi

    if [[ $cur == -* ]]; then
        local opts="--help --json"
        case "$verb $sub" in
            "policy check") opts+=" --state-dir --no-resolve" ;;
            "zone list") opts+=" --names" ;;
            "device list") opts+=" --zone" ;;
            "grant add") opts+=" --client --duration --reason" ;;
            "grant revoke") opts+=" --client" ;;
            "print approve") opts+=" --comment" ;;
            "print reject") opts+=" --reason" ;;
            "history "*) opts+=" --user --zone --path --event --since --until --limit --namespace --directory" ;;
            "events "*) opts+=" --follow --lines --user --zone --path --event --namespace --directory" ;;
            "scan "*) opts="--help --json --policy --threshold --detectors --keywords --keyword-proximity --mime-type --mode" ;;
            "edm build") opts="--help --schema --key --output --encoding" ;;
            "discover "*) opts+=" --db --policy --rescan --cross-filesystems --notify --notify-target" ;;
            "report leak-scope"|"report access")
                opts="--help --since --until --user --client --zone --path --namespace --directory --file --format --output --evidence --no-rescan --policy"
                [[ $sub == leak-scope ]] && opts+=" --discovered-at" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur")); return
    fi

    # A client machine (grant add|revoke --client): an address or a host name.
    if [[ ($verb == grant || $verb == report) && ${words[cword-1]} == --client ]]; then
        COMPREPLY=($(compgen -A hostname -- "$cur")); return
    fi

    # Positional arguments: count the ones after the sub-verb.
    local pos=0 seen=0
    for ((i = 1; i < cword; i++)); do
        [[ ${words[i]} == -* ]] && continue
        ((seen++))
    done
    pos=$((seen - (${subverbs[$verb]:+2} + 0)))
    [[ -z ${subverbs[$verb]} ]] && pos=$((seen - 1))

    case "$verb $sub" in
        "policy check"|"scan "|"edm build")
            _custguardctl_files ;;
        "discover ")
            COMPREPLY=($(compgen -d -- "$cur")) ;;
        "user allow"|"user revoke")
            if ((pos == 0)); then COMPREPLY=($(compgen -W "$(_custguardctl_zones)" -- "$cur"))
            elif [[ $cur == %* ]]; then COMPREPLY=($(compgen -P % -g -- "${cur#%}"))
            else COMPREPLY=($(compgen -u -- "$cur")); fi ;;
        "user list"|"grant list")
            ((pos == 0)) && COMPREPLY=($(compgen -W "$(_custguardctl_zones)" -- "$cur")) ;;
        "grant add"|"grant revoke")
            if ((pos == 0)); then COMPREPLY=($(compgen -W "$(_custguardctl_zones)" -- "$cur"))
            elif ((pos == 1)) && [[ " ${words[*]} " != *" --client "* ]]; then
                COMPREPLY=($(compgen -u -- "$cur"))
            fi ;;
        "device allow"|"device revoke")
            if ((pos == 0)); then COMPREPLY=($(compgen -W "printer client" -- "$cur"))
            elif ((pos == 1)) && [[ ${words[cword-1]} != printer ]]; then
                COMPREPLY=($(compgen -W "$(_custguardctl_zones)" -- "$cur"))
            fi ;;
        "device list")
            ((pos == 0)) && COMPREPLY=($(compgen -W "printer client" -- "$cur")) ;;
        "printer protect"|"printer unprotect")
            ((pos == 0)) && COMPREPLY=($(compgen -W "$(lpstat -e 2>/dev/null)" -- "$cur")) ;;
    esac
} &&
    complete -F _custguardctl custguardctl

# ex: filetype=sh
