//! The shell a terminal pane runs: bash with a generated rcfile that sets up the exam's working
//! conditions (KUBECONFIG on the lab, the lab's kubectl first on PATH, `k` with completion, vim)
//! and a `node-shell` command that opens the control-plane node's shell the way
//! `ckslab node-shell` does (the backend's own command).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::backend::Backend;

/// What to run in the PTY.
#[derive(Debug, Clone)]
pub struct ShellSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

/// Quotes a word for bash (single quotes; a quote inside becomes `'\''`).
pub fn quote(word: &OsStr) -> String {
    let text = word.to_string_lossy();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) {
        return text.into_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A command line for bash that runs `command` as it is (env, program, args).
fn command_line(command: &std::process::Command) -> String {
    let mut words: Vec<String> = Vec::new();
    let envs: Vec<String> =
        command.get_envs().filter_map(|(k, v)| v.map(|v| format!("{}={}", k.to_string_lossy(), quote(v)))).collect();
    if !envs.is_empty() {
        words.push("env".into());
        words.extend(envs);
    }
    words.push(quote(command.get_program()));
    words.extend(command.get_args().map(quote));
    words.join(" ")
}

/// The vim settings of the exam's desktop (two-space indents for YAML, spaces not tabs).
const VIMRC: &str = "set nocompatible\nsyntax on\nset expandtab tabstop=2 shiftwidth=2 softtabstop=2\n\
                     set autoindent number ruler\nfiletype plugin indent on\n";

/// The rcfile's text. `ckslab` is this binary, so `ckslab check` and friends work in the pane.
pub fn rcfile(backend: &dyn Backend, bin_dir: &Path, vimrc: &Path, ckslab: &Path, home: &Path) -> String {
    let node = backend.control_plane();
    let node_shell = command_line(&backend.shell_command(&node, None));
    let kubeconfig = quote(backend.kubeconfig_path().as_os_str());
    let bin = quote(bin_dir.as_os_str());
    let vimrc = quote(vimrc.as_os_str());
    let exe = quote(ckslab.as_os_str());
    let home = quote(home.as_os_str());
    let backend_name = backend.name();
    format!(
        r#"# Written by `ckslab serve` for its terminal pane (rewritten whenever one opens).
# The exam's shell: KUBECONFIG on the lab cluster, the lab's kubectl first on PATH, `k` as an
# alias with completion, vim as the editor. Your ~/.bashrc is not read, as on the exam desktop.
export KUBECONFIG={kubeconfig}
export PATH={bin}:"$PATH"
export CKSLAB_HOME={home} CKSLAB_BACKEND={backend_name}
export EDITOR=vim KUBE_EDITOR=vim
[ -e "$HOME/.vimrc" ] || export VIMINIT='source '{vimrc}
for f in /usr/share/bash-completion/bash_completion /etc/bash_completion; do
  if [ -r "$f" ]; then . "$f"; break; fi
done
# kubectl's completion needs the bash-completion package (apt-get install bash-completion).
if command -v kubectl >/dev/null 2>&1 && declare -F _get_comp_words_by_ref >/dev/null; then
  source <(kubectl completion bash)
  complete -o default -F __start_kubectl k
fi
alias k=kubectl
ckslab() {{ {exe} "$@"; }}
# The control-plane node's shell ({node}); `exit` comes back here.
node-shell() {{ {node_shell}; }}
HISTFILE="$CKSLAB_HOME/terminal/history"
PS1='\[\e[1;34m\]ckslab\[\e[0m\]:\w\$ '
echo "ckslab terminal: kubectl (alias k) on the lab; node-shell opens {node}."
"#
    )
}

/// Writes the rcfile and vimrc under `<home>/terminal/` and says how to start bash with them.
pub fn prepare(backend: &dyn Backend, home: &Path, bin_dir: &Path) -> std::io::Result<ShellSpec> {
    let dir = home.join("terminal");
    std::fs::create_dir_all(&dir)?;
    let vimrc = dir.join("vimrc");
    std::fs::write(&vimrc, VIMRC)?;
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ckslab"));
    let rc = dir.join("bashrc");
    std::fs::write(&rc, rcfile(backend, bin_dir, &vimrc, &exe, home))?;
    let bash = ["/bin/bash", "/usr/bin/bash"].iter().map(PathBuf::from).find(|p| p.exists());
    let (program, args) = match bash {
        Some(bash) => (bash, vec!["--rcfile".to_string(), rc.display().to_string(), "-i".to_string()]),
        None => (PathBuf::from("/bin/sh"), vec!["-i".to_string()]),
    };
    let cwd = dirs::home_dir().filter(|h| h.is_dir()).unwrap_or_else(|| PathBuf::from("/"));
    let env = vec![
        ("TERM".to_string(), "xterm-256color".to_string()),
        ("COLORTERM".to_string(), "truecolor".to_string()),
        ("KUBECONFIG".to_string(), backend.kubeconfig_path().display().to_string()),
        ("CKSLAB_TERMINAL".to_string(), "1".to_string()),
    ];
    Ok(ShellSpec { program, args, env, cwd })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_bash() {
        let words = ["plain", "with space", "it's", "", "$HOME", "a\"b"];
        let line = words.iter().map(|w| quote(OsStr::new(w))).collect::<Vec<_>>().join(" ");
        let out = std::process::Command::new("bash")
            .args(["-c", &format!("printf '%s\\n' {line}")])
            .output()
            .expect("bash runs");
        let printed = String::from_utf8(out.stdout).unwrap();
        assert_eq!(printed.lines().collect::<Vec<_>>(), words);
    }

    #[test]
    fn a_command_line_keeps_its_env_and_args() {
        let mut command = std::process::Command::new("/usr/bin/env");
        command.env("A_B", "x y").args(["sh", "-c", "echo \"$A_B\""]);
        let out = std::process::Command::new("bash").args(["-c", &command_line(&command)]).output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "x y\n");
    }
}
