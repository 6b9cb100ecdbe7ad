# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_airlock_global_optspecs
    string join \n c/config= q/quiet v/verbose h/help V/version
end

function __fish_airlock_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_airlock_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_airlock_using_subcommand
    set -l cmd (__fish_airlock_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c airlock -n "__fish_airlock_needs_command" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_needs_command" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_needs_command" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlock -n "__fish_airlock_needs_command" -s V -l version -d 'Print version'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "init" -d 'Create a site: a commented airlock.toml, the signing key and the data folder'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "key" -d 'Show or export the site\'s signing key'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "apt" -d 'Manage local apt repositories of your own .deb files'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "publish" -d 'Sign and publish repositories; clients see the new state all at once'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "sync" -d 'Fetch the configured upstream mirrors, verify everything, publish what changed'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "images" -d 'Custom and non-Ubuntu boot images in the published image stream'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "snap" -d 'The offline snap store: import snaps with their assertions, release them to channels'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "tls" -d 'HTTPS for `airlock serve`: a site CA and a server certificate'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "maas" -d 'What to run on the MAAS region to use this site'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "verify" -d 'Prove that what is served is whole: over HTTP as apt, MAAS and snapd fetch it, or with --offline the data folder itself'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "dns" -d 'Point the mirrored upstream names (archive.ubuntu.com ...) at this server'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "status" -d 'How the site is doing: healthy or what to do, every content, the last verify, the routes and counters; from the running server, else from the data folder'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "export" -d 'Write what this site publishes as a signed bundle, to carry across the gap'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "import" -d 'Check a bundle from a trusted site and serve what it holds, re-signed with this site\'s key'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "bundle" -d 'Look into bundles without importing them'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "gc" -d 'Free the disk: remove stored files nothing published or kept refers to any more'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "backup" -d 'Copy the data folder to a new folder, hard links kept, while `serve` keeps serving'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "push" -d 'Copy what the data folder serves into the [storage] bucket, for frontends to serve'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "pull" -d 'Rebuild a lost writer\'s data folder from its [storage] bucket'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "serve" -d 'Serve everything published over HTTP'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "demo" -d 'Build a demo site offline and serve it: a repo, a mirror, images and a snap'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "generate" -d 'Write the shell completions and man pages of this command line into a folder (for packaging; the package ships what this writes)'
complete -c airlock -n "__fish_airlock_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand init" -l key-type -d 'Algorithm of the signing key' -r -f -a "ed25519\t'EdDSA over Curve25519 (the format Debian 12\'s gpgv reads)'
rsa4096\t'RSA with a 4096-bit modulus, for clients that want RSA'"
complete -c airlock -n "__fish_airlock_using_subcommand init" -l name -d 'User ID of the signing key' -r
complete -c airlock -n "__fish_airlock_using_subcommand init" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand init" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand init" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlock -n "__fish_airlock_using_subcommand key; and not __fish_seen_subcommand_from generate show export help" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand key; and not __fish_seen_subcommand_from generate show export help" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand key; and not __fish_seen_subcommand_from generate show export help" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand key; and not __fish_seen_subcommand_from generate show export help" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand key; and not __fish_seen_subcommand_from generate show export help" -f -a "generate" -d 'Make the signing key the config names (`[site] signing_key`), with its public halves beside it (.gpg, .asc); refuses to replace one. A packaged site\'s first start uses it'
complete -c airlock -n "__fish_airlock_using_subcommand key; and not __fish_seen_subcommand_from generate show export help" -f -a "show" -d 'Print the fingerprint and details of the signing key'
complete -c airlock -n "__fish_airlock_using_subcommand key; and not __fish_seen_subcommand_from generate show export help" -f -a "export" -d 'Write the public key to stdout (binary, or armored with --armor)'
complete -c airlock -n "__fish_airlock_using_subcommand key; and not __fish_seen_subcommand_from generate show export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from generate" -l key-type -d 'Algorithm of the signing key' -r -f -a "ed25519\t'EdDSA over Curve25519 (the format Debian 12\'s gpgv reads)'
rsa4096\t'RSA with a 4096-bit modulus, for clients that want RSA'"
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from generate" -l name -d 'User ID of the signing key' -r
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from generate" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from generate" -l if-missing -d 'Do nothing when the key exists (the package\'s first install, and every later one)'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from generate" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from generate" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from generate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from show" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from export" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from export" -l armor
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from export" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from export" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "generate" -d 'Make the signing key the config names (`[site] signing_key`), with its public halves beside it (.gpg, .asc); refuses to replace one. A packaged site\'s first start uses it'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print the fingerprint and details of the signing key'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write the public key to stdout (binary, or armored with --armor)'
complete -c airlock -n "__fish_airlock_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and not __fish_seen_subcommand_from include remove list help" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand apt; and not __fish_seen_subcommand_from include remove list help" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and not __fish_seen_subcommand_from include remove list help" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and not __fish_seen_subcommand_from include remove list help" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and not __fish_seen_subcommand_from include remove list help" -f -a "include" -d 'Add .deb files (or every .deb below folders) to a suite and component'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and not __fish_seen_subcommand_from include remove list help" -f -a "remove" -d 'Remove packages from a suite (every version and architecture unless narrowed)'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and not __fish_seen_subcommand_from include remove list help" -f -a "list" -d 'List the packages of a repo, or of one suite'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and not __fish_seen_subcommand_from include remove list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from include" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from include" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from include" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from include" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from remove" -l version -d 'Only this version' -r
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from remove" -l arch -d 'Only this architecture' -r
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from remove" -l component -d 'Only in this component' -r
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from remove" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from list" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable output'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from help" -f -a "include" -d 'Add .deb files (or every .deb below folders) to a suite and component'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove packages from a suite (every version and architecture unless narrowed)'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the packages of a repo, or of one suite'
complete -c airlock -n "__fish_airlock_using_subcommand apt; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand publish" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand publish" -l json -d 'One JSON document on stdout of what was done, instead of the lines (fields: docs/operations.md)'
complete -c airlock -n "__fish_airlock_using_subcommand publish" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand publish" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand publish" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlock -n "__fish_airlock_using_subcommand sync" -s j -l jobs -d 'Downloads at once (default: [sync] jobs, 8)' -r
complete -c airlock -n "__fish_airlock_using_subcommand sync" -l explain -d 'Print why PACKAGE is in each apt mirror synced (the dependency chain from a name of `packages`, the alternatives passed over), or why it is not' -r
complete -c airlock -n "__fish_airlock_using_subcommand sync" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand sync" -l json -d 'One JSON document on stdout of what was done, instead of the lines (fields: docs/operations.md)'
complete -c airlock -n "__fish_airlock_using_subcommand sync" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand sync" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand sync" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand images; and not __fish_seen_subcommand_from add list remove help" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand images; and not __fish_seen_subcommand_from add list remove help" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand images; and not __fish_seen_subcommand_from add list remove help" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand images; and not __fish_seen_subcommand_from add list remove help" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand images; and not __fish_seen_subcommand_from add list remove help" -f -a "add" -d 'Add an image (a tgz of a root filesystem, as packer-maas builds) to the stream'
complete -c airlock -n "__fish_airlock_using_subcommand images; and not __fish_seen_subcommand_from add list remove help" -f -a "list" -d 'List the products of the published stream, mirrored and custom'
complete -c airlock -n "__fish_airlock_using_subcommand images; and not __fish_seen_subcommand_from add list remove help" -f -a "remove" -d 'Remove a custom image (every version, or the one given)'
complete -c airlock -n "__fish_airlock_using_subcommand images; and not __fish_seen_subcommand_from add list remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -l os -d 'Operating system, as MAAS names it (rhel, centos, ol, suse, esxi, windows, custom...)' -r
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -l release -r
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -l arch -r
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -l subarch -r
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -l title -d 'Shown in MAAS (default: "OS RELEASE")' -r
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -l label -r
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -l support-eol -d 'End of support (YYYY-MM-DD), which MAAS shows' -r
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -l filetype -d 'As `maas boot-resources create filetype=` takes it; only tgz goes into a stream' -r -f -a "tgz\t''
tbz\t''
txz\t''
ddtgz\t''
ddtbz\t''
ddtxz\t''
ddtar\t''
ddbz2\t''
ddgz\t''
ddxz\t''
ddraw\t''"
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -l manifest -d 'The image\'s package manifest (default: a listing of the tgz)' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from list" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from list" -l json -d 'One JSON document instead of the lines (fields: docs/operations.md)'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from remove" -l os -r
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from remove" -l release -r
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from remove" -l arch -r
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from remove" -l version -r
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from remove" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add an image (a tgz of a root filesystem, as packer-maas builds) to the stream'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the products of the published stream, mirrored and custom'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a custom image (every version, or the one given)'
complete -c airlock -n "__fish_airlock_using_subcommand images; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and not __fish_seen_subcommand_from import release list fetch client-config remove help" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand snap; and not __fish_seen_subcommand_from import release list fetch client-config remove help" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and not __fish_seen_subcommand_from import release list fetch client-config remove help" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and not __fish_seen_subcommand_from import release list fetch client-config remove help" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and not __fish_seen_subcommand_from import release list fetch client-config remove help" -f -a "import" -d 'Import a snap with its .assert file (as `snap download` writes them), or every snap of a folder; accepted only when the assertions verify up to a trusted root and match the file\'s SHA3-384 and size'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and not __fish_seen_subcommand_from import release list fetch client-config remove help" -f -a "release" -d 'Point channels at a stored revision'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and not __fish_seen_subcommand_from import release list fetch client-config remove help" -f -a "list" -d 'List the snaps of the store, their revisions and channels'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and not __fish_seen_subcommand_from import release list fetch client-config remove help" -f -a "fetch" -d 'Download the [[snaps.snap]] entries of the config from the upstream store, with the bases, snapd and content providers they need; checked as an import is'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and not __fish_seen_subcommand_from import release list fetch client-config remove help" -f -a "client-config" -d 'What a MAAS host or a deployed machine needs to use this store: the snapd drop-in, the CA to trust, and the cloud-init snippet for machines MAAS deploys'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and not __fish_seen_subcommand_from import release list fetch client-config remove help" -f -a "remove" -d 'Remove a snap (or one revision of it) from the store'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and not __fish_seen_subcommand_from import release list fetch client-config remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from import" -l channel -d 'Channels to release it to (track/risk[/branch]); repeat for several' -r
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from import" -l arch -d 'Architectures to release it for (default: those meta/snap.yaml declares)' -r
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from import" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from import" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from import" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from release" -l arch -r
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from release" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from release" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from release" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from release" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from list" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from list" -l json -d 'One JSON document instead of the lines (fields: docs/operations.md)'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from fetch" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from fetch" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from fetch" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from fetch" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from client-config" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from client-config" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from client-config" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from client-config" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from remove" -l revision -r
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from remove" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from help" -f -a "import" -d 'Import a snap with its .assert file (as `snap download` writes them), or every snap of a folder; accepted only when the assertions verify up to a trusted root and match the file\'s SHA3-384 and size'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from help" -f -a "release" -d 'Point channels at a stored revision'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the snaps of the store, their revisions and channels'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from help" -f -a "fetch" -d 'Download the [[snaps.snap]] entries of the config from the upstream store, with the bases, snapd and content providers they need; checked as an import is'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from help" -f -a "client-config" -d 'What a MAAS host or a deployed machine needs to use this store: the snapd drop-in, the CA to trust, and the cloud-init snippet for machines MAAS deploys'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a snap (or one revision of it) from the store'
complete -c airlock -n "__fish_airlock_using_subcommand snap; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand tls; and not __fish_seen_subcommand_from init help" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand tls; and not __fish_seen_subcommand_from init help" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand tls; and not __fish_seen_subcommand_from init help" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand tls; and not __fish_seen_subcommand_from init help" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand tls; and not __fish_seen_subcommand_from init help" -f -a "init" -d 'Make the site CA (once; later runs reuse it) and a server certificate for the site\'s names, in tls/ next to airlock.toml'
complete -c airlock -n "__fish_airlock_using_subcommand tls; and not __fish_seen_subcommand_from init help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand tls; and __fish_seen_subcommand_from init" -l name -d 'More DNS names or addresses the certificate must cover (repeat)' -r
complete -c airlock -n "__fish_airlock_using_subcommand tls; and __fish_seen_subcommand_from init" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand tls; and __fish_seen_subcommand_from init" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand tls; and __fish_seen_subcommand_from init" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand tls; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand tls; and __fish_seen_subcommand_from help" -f -a "init" -d 'Make the site CA (once; later runs reuse it) and a server certificate for the site\'s names, in tls/ next to airlock.toml'
complete -c airlock -n "__fish_airlock_using_subcommand tls; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand maas; and not __fish_seen_subcommand_from boot-source help" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand maas; and not __fish_seen_subcommand_from boot-source help" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand maas; and not __fish_seen_subcommand_from boot-source help" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand maas; and not __fish_seen_subcommand_from boot-source help" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand maas; and not __fish_seen_subcommand_from boot-source help" -f -a "boot-source" -d 'Print the commands that make MAAS import boot images from this site'
complete -c airlock -n "__fish_airlock_using_subcommand maas; and not __fish_seen_subcommand_from boot-source help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand maas; and __fish_seen_subcommand_from boot-source" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand maas; and __fish_seen_subcommand_from boot-source" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand maas; and __fish_seen_subcommand_from boot-source" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand maas; and __fish_seen_subcommand_from boot-source" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand maas; and __fish_seen_subcommand_from help" -f -a "boot-source" -d 'Print the commands that make MAAS import boot images from this site'
complete -c airlock -n "__fish_airlock_using_subcommand maas; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand verify" -l url -d 'The server to check (default: the site\'s public_url)' -r
complete -c airlock -n "__fish_airlock_using_subcommand verify" -l sample -d 'Pool files checked per suite when not --full' -r
complete -c airlock -n "__fish_airlock_using_subcommand verify" -l horizon-days -d 'Warn about a Release that expires within this many days' -r
complete -c airlock -n "__fish_airlock_using_subcommand verify" -l resolver -d 'The DNS server the site\'s machines use (IP or IP:PORT): the overridden names must resolve there to [dns] address (default: this machine\'s resolver)' -r
complete -c airlock -n "__fish_airlock_using_subcommand verify" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand verify" -l full -d 'Every pool file, not a sample'
complete -c airlock -n "__fish_airlock_using_subcommand verify" -l offline -d 'Check the data folder without a server: every stored blob re-hashed, every published file and every snap\'s blob present. Exit status 0 all passed, 1 failures, 2 could not run'
complete -c airlock -n "__fish_airlock_using_subcommand verify" -l json -d 'One JSON document instead of the table, for monitoring'
complete -c airlock -n "__fish_airlock_using_subcommand verify" -l client-config -d 'After the checks, print a runbook of what clients are told: addresses, keys, apt sources, the names to point here, the MAAS and snapd settings'
complete -c airlock -n "__fish_airlock_using_subcommand verify" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand verify" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand verify" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand dns; and not __fish_seen_subcommand_from config help" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand dns; and not __fish_seen_subcommand_from config help" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand dns; and not __fish_seen_subcommand_from config help" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand dns; and not __fish_seen_subcommand_from config help" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand dns; and not __fish_seen_subcommand_from config help" -f -a "config" -d 'Print the config that makes an existing resolver answer the routed names with this server\'s address'
complete -c airlock -n "__fish_airlock_using_subcommand dns; and not __fish_seen_subcommand_from config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand dns; and __fish_seen_subcommand_from config" -l format -r -f -a "dnsmasq\t'Lines for /etc/dnsmasq.d/'
unbound\t'A server: clause for /etc/unbound/unbound.conf.d/'
bind-rpz\t'A response policy zone for BIND 9'
maas\t'`maas` CLI commands adding the names to MAAS\'s DNS'"
complete -c airlock -n "__fish_airlock_using_subcommand dns; and __fish_seen_subcommand_from config" -l address -d 'The address to answer with (repeat for IPv4 and IPv6; default [dns] address)' -r
complete -c airlock -n "__fish_airlock_using_subcommand dns; and __fish_seen_subcommand_from config" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand dns; and __fish_seen_subcommand_from config" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand dns; and __fish_seen_subcommand_from config" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand dns; and __fish_seen_subcommand_from config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlock -n "__fish_airlock_using_subcommand dns; and __fish_seen_subcommand_from help" -f -a "config" -d 'Print the config that makes an existing resolver answer the routed names with this server\'s address'
complete -c airlock -n "__fish_airlock_using_subcommand dns; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand status" -l url -d 'The server to ask (default: the site\'s public_url); when none answers there, the data folder is read' -r
complete -c airlock -n "__fish_airlock_using_subcommand status" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand status" -l json -d 'The status document (/status.json) as it is'
complete -c airlock -n "__fish_airlock_using_subcommand status" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand status" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand status" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand export" -l to -d 'The bundle folder to write (new or empty)' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand export" -l since -d 'Only what this earlier bundle of the site (its folder or manifest.json) lacked: the importing side must have imported that one' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand export" -l split -d 'Volumes of at most this size, for DVDs, USB disks or a diode\'s limit: bytes, or with a unit: 700MiB, 4G (binary, as split(1)), 4.7GB (decimal)' -r
complete -c airlock -n "__fish_airlock_using_subcommand export" -l airlock-deb -d 'The airlock .deb to carry in the bundle (default: [export] airlock_deb, else this airlock\'s own .deb from apt\'s cache when a package installed it, else its binary; docs/bundles.md)' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand export" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand export" -l zstd -d 'zstd-compressed volumes (volume-NNN.tar.zst): worth it for indices and images, not .debs'
complete -c airlock -n "__fish_airlock_using_subcommand export" -l no-airlock -d 'Carry no copy of airlock in the bundle (as [export] carry_airlock = false)'
complete -c airlock -n "__fish_airlock_using_subcommand export" -l json -d 'One JSON document on stdout of what was done, instead of the lines (fields: docs/operations.md)'
complete -c airlock -n "__fish_airlock_using_subcommand export" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand export" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand export" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand import" -l keyring -d 'An exporting site\'s public key (airlock.gpg), besides [import] trusted_keys' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand import" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand import" -l json -d 'One JSON document on stdout of what was done, instead of the lines (fields: docs/operations.md)'
complete -c airlock -n "__fish_airlock_using_subcommand import" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand import" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand import" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and not __fish_seen_subcommand_from inspect help" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and not __fish_seen_subcommand_from inspect help" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and not __fish_seen_subcommand_from inspect help" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and not __fish_seen_subcommand_from inspect help" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and not __fish_seen_subcommand_from inspect help" -f -a "inspect" -d 'What a bundle holds, per content and volume, and who signed it'
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and not __fish_seen_subcommand_from inspect help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -l keyring -d 'An exporting site\'s public key, besides [import] trusted_keys' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -l json -d 'One JSON document instead of the lines (fields: docs/operations.md)'
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'What a bundle holds, per content and volume, and who signed it'
complete -c airlock -n "__fish_airlock_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand gc" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand gc" -l dry-run -d 'Count what would be removed, remove nothing'
complete -c airlock -n "__fish_airlock_using_subcommand gc" -l json -d 'One JSON document on stdout of what was done, instead of the lines (fields: docs/operations.md)'
complete -c airlock -n "__fish_airlock_using_subcommand gc" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand gc" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand gc" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlock -n "__fish_airlock_using_subcommand backup" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand backup" -l json -d 'One JSON document on stdout of what was copied, instead of the line'
complete -c airlock -n "__fish_airlock_using_subcommand backup" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand backup" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlock -n "__fish_airlock_using_subcommand push" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand push" -l json -d 'One JSON document on stdout of what was done, instead of the lines (fields: docs/operations.md)'
complete -c airlock -n "__fish_airlock_using_subcommand push" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand push" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand push" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlock -n "__fish_airlock_using_subcommand pull" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand pull" -l json -d 'One JSON document on stdout of what was done, instead of the lines (fields: docs/operations.md)'
complete -c airlock -n "__fish_airlock_using_subcommand pull" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand pull" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand pull" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlock -n "__fish_airlock_using_subcommand serve" -l listen -d 'Listen here instead of the configured address (port 0 picks a free port)' -r
complete -c airlock -n "__fish_airlock_using_subcommand serve" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand serve" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand serve" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand serve" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand demo" -l listen -d 'Address to serve the demo on' -r
complete -c airlock -n "__fish_airlock_using_subcommand demo" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand demo" -l no-serve -d 'Prepare and publish the demo site, then exit instead of serving it'
complete -c airlock -n "__fish_airlock_using_subcommand demo" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand demo" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlock -n "__fish_airlock_using_subcommand generate" -s c -l config -d 'The site\'s configuration file' -r -F
complete -c airlock -n "__fish_airlock_using_subcommand generate" -s q -l quiet -d 'Nothing on success but what the command was asked for (a listing, a key, --json, failed checks): no progress, no summaries. Warnings and errors still go to stderr'
complete -c airlock -n "__fish_airlock_using_subcommand generate" -s v -l verbose -d 'More detail (repeat for debug logs)'
complete -c airlock -n "__fish_airlock_using_subcommand generate" -s h -l help -d 'Print help'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "init" -d 'Create a site: a commented airlock.toml, the signing key and the data folder'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "key" -d 'Show or export the site\'s signing key'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "apt" -d 'Manage local apt repositories of your own .deb files'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "publish" -d 'Sign and publish repositories; clients see the new state all at once'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "sync" -d 'Fetch the configured upstream mirrors, verify everything, publish what changed'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "images" -d 'Custom and non-Ubuntu boot images in the published image stream'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "snap" -d 'The offline snap store: import snaps with their assertions, release them to channels'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "tls" -d 'HTTPS for `airlock serve`: a site CA and a server certificate'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "maas" -d 'What to run on the MAAS region to use this site'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "verify" -d 'Prove that what is served is whole: over HTTP as apt, MAAS and snapd fetch it, or with --offline the data folder itself'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "dns" -d 'Point the mirrored upstream names (archive.ubuntu.com ...) at this server'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "status" -d 'How the site is doing: healthy or what to do, every content, the last verify, the routes and counters; from the running server, else from the data folder'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "export" -d 'Write what this site publishes as a signed bundle, to carry across the gap'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "import" -d 'Check a bundle from a trusted site and serve what it holds, re-signed with this site\'s key'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "bundle" -d 'Look into bundles without importing them'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "gc" -d 'Free the disk: remove stored files nothing published or kept refers to any more'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "backup" -d 'Copy the data folder to a new folder, hard links kept, while `serve` keeps serving'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "push" -d 'Copy what the data folder serves into the [storage] bucket, for frontends to serve'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "pull" -d 'Rebuild a lost writer\'s data folder from its [storage] bucket'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "serve" -d 'Serve everything published over HTTP'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "demo" -d 'Build a demo site offline and serve it: a repo, a mirror, images and a snap'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "generate" -d 'Write the shell completions and man pages of this command line into a folder (for packaging; the package ships what this writes)'
complete -c airlock -n "__fish_airlock_using_subcommand help; and not __fish_seen_subcommand_from init key apt publish sync images snap tls maas verify dns status export import bundle gc backup push pull serve demo generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "generate" -d 'Make the signing key the config names (`[site] signing_key`), with its public halves beside it (.gpg, .asc); refuses to replace one. A packaged site\'s first start uses it'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "show" -d 'Print the fingerprint and details of the signing key'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "export" -d 'Write the public key to stdout (binary, or armored with --armor)'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from apt" -f -a "include" -d 'Add .deb files (or every .deb below folders) to a suite and component'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from apt" -f -a "remove" -d 'Remove packages from a suite (every version and architecture unless narrowed)'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from apt" -f -a "list" -d 'List the packages of a repo, or of one suite'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from images" -f -a "add" -d 'Add an image (a tgz of a root filesystem, as packer-maas builds) to the stream'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from images" -f -a "list" -d 'List the products of the published stream, mirrored and custom'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from images" -f -a "remove" -d 'Remove a custom image (every version, or the one given)'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from snap" -f -a "import" -d 'Import a snap with its .assert file (as `snap download` writes them), or every snap of a folder; accepted only when the assertions verify up to a trusted root and match the file\'s SHA3-384 and size'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from snap" -f -a "release" -d 'Point channels at a stored revision'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from snap" -f -a "list" -d 'List the snaps of the store, their revisions and channels'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from snap" -f -a "fetch" -d 'Download the [[snaps.snap]] entries of the config from the upstream store, with the bases, snapd and content providers they need; checked as an import is'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from snap" -f -a "client-config" -d 'What a MAAS host or a deployed machine needs to use this store: the snapd drop-in, the CA to trust, and the cloud-init snippet for machines MAAS deploys'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from snap" -f -a "remove" -d 'Remove a snap (or one revision of it) from the store'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from tls" -f -a "init" -d 'Make the site CA (once; later runs reuse it) and a server certificate for the site\'s names, in tls/ next to airlock.toml'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from maas" -f -a "boot-source" -d 'Print the commands that make MAAS import boot images from this site'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from dns" -f -a "config" -d 'Print the config that makes an existing resolver answer the routed names with this server\'s address'
complete -c airlock -n "__fish_airlock_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "inspect" -d 'What a bundle holds, per content and volume, and who signed it'
