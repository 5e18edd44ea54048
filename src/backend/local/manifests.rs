//! Static pod manifests and kubelet files, as `kubeadm init` (v1.34) writes them for a node
//! whose advertise address is 127.0.0.1.
//!
//! Written as text rather than serialized structs so the files read like kubeadm's (field order,
//! `creationTimestamp: null`, `status: {}`): learners edit them by hand.
//!
//! Deviations from kubeadm, on purpose, both on the API server: `--bind-address=127.0.0.1` so a
//! lab cluster on a laptop does not listen on every interface, and
//! `--endpoint-reconciler-type=none` because the `kubernetes` Endpoints may not hold a loopback
//! address (the reconciler would log an error every 10 s).

use super::paths::CONTROL_PLANE;
use super::pki::NodeFile;
use crate::tools::KUBERNETES_VERSION;

/// kubeadm's probes of the components that serve HTTPS health endpoints.
fn https_probes() -> String {
    probe("livenessProbe", "/livez", "HTTPS", 8, true)
        + &probe("readinessProbe", "/readyz", "HTTPS", 3, false)
        + &probe("startupProbe", "/livez", "HTTPS", 24, true)
}

fn probe(kind: &str, path: &str, scheme: &str, failure: u32, initial_delay: bool) -> String {
    let delay = if initial_delay { "      initialDelaySeconds: 10\n" } else { "" };
    let period = if kind == "readinessProbe" { 1 } else { 10 };
    format!(
        "    {kind}:
      failureThreshold: {failure}
      httpGet:
        host: 127.0.0.1
        path: {path}
        port: probe-port
        scheme: {scheme}
{delay}      periodSeconds: {period}
      timeoutSeconds: 15
"
    )
}

const CA_MOUNTS: &str = "    - mountPath: /etc/ssl/certs
      name: ca-certs
      readOnly: true
    - mountPath: /etc/ca-certificates
      name: etc-ca-certificates
      readOnly: true
";

const USR_CA_MOUNTS: &str = "    - mountPath: /usr/local/share/ca-certificates
      name: usr-local-share-ca-certificates
      readOnly: true
    - mountPath: /usr/share/ca-certificates
      name: usr-share-ca-certificates
      readOnly: true
";

fn host_path(name: &str, path: &str, ty: &str) -> String {
    format!("  - hostPath:\n      path: {path}\n      type: {ty}\n    name: {name}\n")
}

fn ca_volumes_head() -> String {
    host_path("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate")
        + &host_path("etc-ca-certificates", "/etc/ca-certificates", "DirectoryOrCreate")
}

fn ca_volumes_tail() -> String {
    host_path("usr-local-share-ca-certificates", "/usr/local/share/ca-certificates", "DirectoryOrCreate")
        + &host_path("usr-share-ca-certificates", "/usr/share/ca-certificates", "DirectoryOrCreate")
}

/// The parts of a control-plane static pod that differ between components.
struct PodText<'a> {
    name: &'a str,
    annotations: &'a str,
    flags: &'a [&'a str],
    image: &'a str,
    probes: &'a str,
    port: u16,
    cpu: &'a str,
    mounts: &'a str,
    volumes: &'a str,
}

fn pod(p: PodText<'_>) -> String {
    let PodText { name, annotations, flags, image, probes, port, cpu, mounts, volumes } = p;
    let command: String = std::iter::once(name.to_string())
        .chain(flags.iter().map(|f| f.to_string()))
        .map(|a| format!("    - {a}\n"))
        .collect();
    format!(
        "apiVersion: v1
kind: Pod
metadata:
{annotations}  creationTimestamp: null
  labels:
    component: {name}
    tier: control-plane
  name: {name}
  namespace: kube-system
spec:
  containers:
  - command:
{command}    image: {image}
    imagePullPolicy: IfNotPresent
{probes}    name: {name}
    ports:
    - containerPort: {port}
      name: probe-port
      protocol: TCP
    resources:
      requests:
        cpu: {cpu}
    volumeMounts:
{mounts}  hostNetwork: true
  priority: 2000001000
  priorityClassName: system-node-critical
  securityContext:
    seccompProfile:
      type: RuntimeDefault
  volumes:
{volumes}status: {{}}
"
    )
}

pub fn etcd() -> String {
    let flags = [
        "--advertise-client-urls=https://127.0.0.1:2379".to_string(),
        "--cert-file=/etc/kubernetes/pki/etcd/server.crt".into(),
        "--client-cert-auth=true".into(),
        "--data-dir=/var/lib/etcd".into(),
        "--feature-gates=InitialCorruptCheck=true".into(),
        "--initial-advertise-peer-urls=https://127.0.0.1:2380".into(),
        format!("--initial-cluster={CONTROL_PLANE}=https://127.0.0.1:2380"),
        "--key-file=/etc/kubernetes/pki/etcd/server.key".into(),
        "--listen-client-urls=https://127.0.0.1:2379".into(),
        "--listen-metrics-urls=http://127.0.0.1:2381".into(),
        "--listen-peer-urls=https://127.0.0.1:2380".into(),
        format!("--name={CONTROL_PLANE}"),
        "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt".into(),
        "--peer-client-cert-auth=true".into(),
        "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key".into(),
        "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt".into(),
        "--snapshot-count=10000".into(),
        "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt".into(),
        "--watch-progress-notify-interval=5s".into(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let probes = probe("livenessProbe", "/livez", "HTTP", 8, true)
        + &probe("readinessProbe", "/readyz", "HTTP", 3, false)
        + &probe("startupProbe", "/readyz", "HTTP", 24, true);
    let mounts = "    - mountPath: /var/lib/etcd
      name: etcd-data
    - mountPath: /etc/kubernetes/pki/etcd
      name: etcd-certs
";
    let volumes = host_path("etcd-certs", "/etc/kubernetes/pki/etcd", "DirectoryOrCreate")
        + &host_path("etcd-data", "/var/lib/etcd", "DirectoryOrCreate");
    pod(PodText {
        name: "etcd",
        annotations: "  annotations:\n    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://127.0.0.1:2379\n",
        flags: &flags,
        image: "registry.k8s.io/etcd:3.6.4-0",
        probes: &probes,
        port: 2381,
        cpu: "100m",
        mounts,
        volumes: &volumes,
    })
    // kubeadm's etcd also requests memory; keep the text close to it.
    .replace("        cpu: 100m\n", "        cpu: 100m\n        memory: 100Mi\n")
}

pub fn kube_apiserver() -> String {
    let flags = [
        "--advertise-address=127.0.0.1",
        "--allow-privileged=true",
        "--authorization-mode=Node,RBAC",
        "--bind-address=127.0.0.1",
        "--client-ca-file=/etc/kubernetes/pki/ca.crt",
        "--enable-admission-plugins=NodeRestriction",
        "--enable-bootstrap-token-auth=true",
        "--endpoint-reconciler-type=none",
        "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
        "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
        "--etcd-servers=https://127.0.0.1:2379",
        "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
        "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
        "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
        "--secure-port=6443",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
        "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
        "--service-cluster-ip-range=10.96.0.0/12",
        "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
        "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
    ];
    let probes = https_probes();
    let mounts = format!(
        "{CA_MOUNTS}    - mountPath: /etc/kubernetes/pki\n      name: k8s-certs\n      readOnly: true\n{USR_CA_MOUNTS}"
    );
    let volumes =
        ca_volumes_head() + &host_path("k8s-certs", "/etc/kubernetes/pki", "DirectoryOrCreate") + &ca_volumes_tail();
    pod(PodText {
        name: "kube-apiserver",
        annotations: "  annotations:\n    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: 127.0.0.1:6443\n",
        flags: &flags,
        image: &format!("registry.k8s.io/kube-apiserver:{KUBERNETES_VERSION}"),
        probes: &probes,
        port: 6443,
        cpu: "250m",
        mounts: &mounts,
        volumes: &volumes,
    })
}

pub fn kube_controller_manager() -> String {
    let flags = [
        "--allocate-node-cidrs=true",
        "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
        "--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf",
        "--bind-address=127.0.0.1",
        "--client-ca-file=/etc/kubernetes/pki/ca.crt",
        "--cluster-cidr=10.244.0.0/16",
        "--cluster-name=kubernetes",
        "--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt",
        "--cluster-signing-key-file=/etc/kubernetes/pki/ca.key",
        "--controllers=*,bootstrapsigner,tokencleaner",
        "--kubeconfig=/etc/kubernetes/controller-manager.conf",
        "--leader-elect=true",
        // Shorter than kubeadm's 15s lease: here the supervisor restarts this component with
        // every API server restart, and the new process would wait out the old one's lease.
        "--leader-elect-lease-duration=5s",
        "--leader-elect-renew-deadline=4s",
        "--leader-elect-retry-period=1s",
        // Not kubeadm's: kwok's nodes have no kubelet to mark pods Ready again, so a node taken
        // for NotReady after one late heartbeat (a busy machine, an API server a scenario keeps
        // down) would leave every pod Running but not Ready for good.
        "--node-monitor-grace-period=1h",
        "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
        "--root-ca-file=/etc/kubernetes/pki/ca.crt",
        "--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
        "--service-cluster-ip-range=10.96.0.0/12",
        "--use-service-account-credentials=true",
    ];
    let probes =
        probe("livenessProbe", "/healthz", "HTTPS", 8, true) + &probe("startupProbe", "/healthz", "HTTPS", 24, true);
    let mounts = format!(
        "{CA_MOUNTS}    - mountPath: /usr/libexec/kubernetes/kubelet-plugins/volume/exec
      name: flexvolume-dir
    - mountPath: /etc/kubernetes/pki
      name: k8s-certs
      readOnly: true
    - mountPath: /etc/kubernetes/controller-manager.conf
      name: kubeconfig
      readOnly: true
{USR_CA_MOUNTS}"
    );
    let volumes = ca_volumes_head()
        + &host_path("flexvolume-dir", "/usr/libexec/kubernetes/kubelet-plugins/volume/exec", "DirectoryOrCreate")
        + &host_path("k8s-certs", "/etc/kubernetes/pki", "DirectoryOrCreate")
        + &host_path("kubeconfig", "/etc/kubernetes/controller-manager.conf", "FileOrCreate")
        + &ca_volumes_tail();
    pod(PodText {
        name: "kube-controller-manager",
        annotations: "",
        flags: &flags,
        image: &format!("registry.k8s.io/kube-controller-manager:{KUBERNETES_VERSION}"),
        probes: &probes,
        port: 10257,
        cpu: "200m",
        mounts: &mounts,
        volumes: &volumes,
    })
}

pub fn kube_scheduler() -> String {
    let flags = [
        "--authentication-kubeconfig=/etc/kubernetes/scheduler.conf",
        "--authorization-kubeconfig=/etc/kubernetes/scheduler.conf",
        "--bind-address=127.0.0.1",
        "--kubeconfig=/etc/kubernetes/scheduler.conf",
        "--leader-elect=true",
        // Shorter than kubeadm's 15s lease: here the supervisor restarts this component with
        // every API server restart, and the new process would wait out the old one's lease.
        "--leader-elect-lease-duration=5s",
        "--leader-elect-renew-deadline=4s",
        "--leader-elect-retry-period=1s",
    ];
    let probes = https_probes();
    let mounts = "    - mountPath: /etc/kubernetes/scheduler.conf
      name: kubeconfig
      readOnly: true
";
    let volumes = host_path("kubeconfig", "/etc/kubernetes/scheduler.conf", "FileOrCreate");
    pod(PodText {
        name: "kube-scheduler",
        annotations: "",
        flags: &flags,
        image: &format!("registry.k8s.io/kube-scheduler:{KUBERNETES_VERSION}"),
        probes: &probes,
        port: 10259,
        cpu: "100m",
        mounts,
        volumes: &volumes,
    })
}

/// `/var/lib/kubelet/config.yaml` as kubeadm writes it (defaults elided the way kubeadm does).
pub fn kubelet_config() -> &'static str {
    "apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerRuntimeEndpoint: \"\"
cpuManagerReconcilePeriod: 0s
crashLoopBackOff: {}
evictionPressureTransitionPeriod: 0s
fileCheckFrequency: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
httpCheckFrequency: 0s
imageMaximumGCAge: 0s
imageMinimumGCAge: 0s
kind: KubeletConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: \"0\"
    text:
      infoBufferSize: \"0\"
  verbosity: 0
memorySwap: {}
nodeStatusReportFrequency: 0s
nodeStatusUpdateFrequency: 0s
rotateCertificates: true
runtimeRequestTimeout: 0s
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
staticPodPath: /etc/kubernetes/manifests
streamingConnectionIdleTimeout: 0s
syncFrequency: 0s
volumeStatsAggPeriod: 0s
"
}

fn kubeadm_flags_env() -> String {
    "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --node-ip=127.0.0.1 --pod-infra-container-image=registry.k8s.io/pause:3.10.1\"\n".to_string()
}

/// The kubelet files every node has.
pub fn kubelet_files() -> Vec<NodeFile> {
    vec![
        NodeFile::new("/var/lib/kubelet/config.yaml", kubelet_config(), 0o644),
        NodeFile::new("/var/lib/kubelet/kubeadm-flags.env", kubeadm_flags_env(), 0o644),
    ]
}

/// The four static pod manifests, mode 0600 as kubeadm writes them.
pub fn control_plane_manifests() -> Vec<NodeFile> {
    [
        ("etcd", etcd()),
        ("kube-apiserver", kube_apiserver()),
        ("kube-controller-manager", kube_controller_manager()),
        ("kube-scheduler", kube_scheduler()),
    ]
    .into_iter()
    .map(|(n, text)| NodeFile::new(format!("/etc/kubernetes/manifests/{n}.yaml"), text, 0o600))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn manifests_parse_as_pods() {
        for f in control_plane_manifests() {
            let text = String::from_utf8(f.contents).unwrap();
            let pod: Pod = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", f.path));
            let spec = pod.spec.unwrap();
            let c = &spec.containers[0];
            assert!(c.command.as_ref().unwrap().len() > 3);
            for m in c.volume_mounts.as_ref().unwrap() {
                assert!(spec.volumes.as_ref().unwrap().iter().any(|v| v.name == m.name), "{}: {}", f.path, m.name);
            }
        }
    }
}
