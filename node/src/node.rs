//! Wires a node together: identity, store, ingest, swarm and API, and stops them in order.

use std::future::Future;
use std::net::SocketAddr;

use libp2p::{Multiaddr, PeerId};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::api::{self, ApiClient, ApiState};
use crate::config::{DataDir, NodeConfig};
use crate::ingest::Ingest;
use crate::net::{self, NetClient, NetConfig};
use crate::store::{Store, StoreError};
use crate::{identity, sync};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// The store's own error says what went wrong (and names the directory when it is in use
    /// by another node); it is not also given as a source, so it is said once.
    #[error("cannot open the store in {dir}: {error}")]
    Store { dir: String, error: StoreError },
    #[error(transparent)]
    Net(#[from] net::NetError),
    #[error("cannot start the API on {addr}: {source}")]
    Api {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the web pages on {addr}: {source}")]
    Web {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    TeacherKey(#[from] crate::teacher_key::TeacherKeyError),
    #[error(transparent)]
    Tls(#[from] api::tls::TlsError),
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
    #[error("while stopping: {0}")]
    Stop(String),
    #[error("cannot open the search index: {0}")]
    Search(String),
    #[error(
        "the p2p address {addr} is already in use on this machine (another Staffroom node, or \
         another program): stop it, or give this node another port with --listen"
    )]
    PortInUse { addr: Multiaddr },
}

/// Refuses listen addresses whose TCP port something on this machine already holds: libp2p
/// listens with port reuse, so without this check a second node would start on the same port
/// and share the first one's incoming connections.
fn check_ports_free(listen: &[Multiaddr]) -> Result<(), NodeError> {
    match ports_in_use(listen).into_iter().next() {
        Some(addr) => Err(NodeError::PortInUse { addr }),
        None => Ok(()),
    }
}

/// The listen addresses whose TCP port something on this machine already holds.
pub fn ports_in_use(listen: &[Multiaddr]) -> Vec<Multiaddr> {
    use libp2p::multiaddr::Protocol;
    let mut held = Vec::new();
    for addr in listen {
        let mut parts = addr.iter();
        let ip: std::net::IpAddr = match parts.next() {
            Some(Protocol::Ip4(ip)) => ip.into(),
            Some(Protocol::Ip6(ip)) => ip.into(),
            _ => continue,
        };
        let Some(Protocol::Tcp(port)) = parts.next() else {
            continue;
        };
        if port == 0 {
            continue;
        }
        match std::net::TcpListener::bind((ip, port)) {
            Ok(probe) => drop(probe),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => held.push(addr.clone()),
            // Anything else (an address not on this machine, say) is libp2p's to report.
            Err(_) => {}
        }
    }
    held
}

/// A node that is running: its addresses, and the means to stop it.
pub struct RunningNode {
    pub peer_id: PeerId,
    /// libp2p addresses the node listens on (real ports, even when 0 was asked for).
    pub listen_addrs: Vec<Multiaddr>,
    pub api_addr: SocketAddr,
    /// Where the web pages listen, when they are enabled.
    pub web_addr: Option<SocketAddr>,
    pub net: NetClient,
    /// The pin of the API's TLS certificate, when the API is served over TLS.
    pub api_pin: Option<String>,
    /// The school's admin key: the teacher key in the node's data directory.
    admin: staffroom_protocol::SigningKey,
    store: Store,
    ingest: crate::ingest::Ingest,
    search: crate::search::SearchIndex,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts a node and returns once it listens on every address and serves its API.
pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
    let data = DataDir::new(&config.data_dir);
    let io_err = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| NodeError::Io { path, source }
    };
    crate::secret_file::private_dir(data.path()).map_err(io_err(data.path()))?;
    let open_files_max = crate::fd_limit::raise();
    tracing::debug!(?open_files_max, "open-file limit");
    let keypair = identity::load_or_create(&data.node_key())?;
    let peer_id = keypair.public().to_peer_id();
    // The same key seals private networks' content keys to this node and signs its grants.
    let node_signing = keypair
        .clone()
        .try_into_ed25519()
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k.secret().as_ref()).ok())
        .map(|secret| staffroom_protocol::SigningKey::from_bytes(&secret));
    let options = crate::store::StoreOptions {
        config: config.store,
        ..crate::store::StoreOptions::default()
    };
    let store = Store::open_with(&data.store(), options).map_err(|error| NodeError::Store {
        dir: data.store().display().to_string(),
        error,
    })?;
    let search =
        crate::search::SearchIndex::open(&crate::search::dir_in(data.path()), store.clone())
            .map_err(|e| NodeError::Search(e.to_string()))?;
    let (unfollow_tx, mut unfollow_rx) = mpsc::channel(crate::ingest::UNFOLLOW_QUEUE_MAX);
    let mut ingest = Ingest::new(store.clone(), config.clock);
    if let Some(key) = crate::roster::node_key(&peer_id) {
        ingest = ingest.with_local_node(key, unfollow_tx);
    }
    let networks = store.networks().map_err(|error| NodeError::Store {
        dir: data.store().display().to_string(),
        error,
    })?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (sync_triggers, sync_trigger_rx) = mpsc::channel(sync::scheduler::QUEUE_MAX);
    check_ports_free(&config.listen)?;
    // Configured peers first, then those remembered from earlier runs.
    let remembered = crate::peer_book::load(&data.peer_book());
    let mut peers = config.peers.clone();
    for addr in &remembered {
        if !peers.contains(addr) {
            peers.push(addr.clone());
        }
    }
    let (sync_handle, sync_requests) = sync::SyncHandle::channel();

    let net = net::spawn(
        NetConfig {
            keypair,
            listen: config.listen.clone(),
            peers,
            mdns: config.mdns,
            dht: config.dht,
            networks: networks.iter().map(|n| n.id).collect(),
            sync_triggers,
            sync_request_timeout: std::time::Duration::from_secs(
                config.sync.request_timeout_secs.max(1),
            ),
            relay: config.relay.clone(),
            relay_may_share: relay_may_share(&ingest),
            clock: config.clock,
        },
        ingest.clone(),
        shutdown_rx.clone(),
    )
    .await?;

    let admin = register_admin(&data, &store, config.clock.now_ms()).await?;
    let blobs = crate::files::Blobs::open(&data.files())?;
    let (fetch, mut background) =
        start_files(blobs, &net, &ingest, config.files.clone(), &shutdown_rx)?;
    background.push(tokio::spawn(crate::peer_book::keep(
        net.client.clone(),
        data.peer_book(),
        remembered,
        shutdown_rx.clone(),
    )));
    if let Some(node) = node_signing {
        let keeper = crate::private::keeper::Keeper {
            ingest: ingest.clone(),
            net: net.client.clone(),
            node,
        };
        background.push(tokio::spawn(keeper.run(shutdown_rx.clone())));
    }
    let listener = TcpListener::bind(config.api_listen)
        .await
        .map_err(|source| NodeError::Api {
            addr: config.api_listen,
            source,
        })?;
    let api_addr = listener.local_addr().map_err(|source| NodeError::Api {
        addr: config.api_listen,
        source,
    })?;
    let scheduler = tokio::spawn(sync::driver::run_scheduler(
        config.sync,
        net.client.clone(),
        ingest.clone(),
        sync_trigger_rx,
        sync_requests,
        shutdown_rx.clone(),
    ));
    let release = tokio::spawn(ingest.clone().release_held(shutdown_rx.clone()));
    let unfollower = {
        let (net, mut shutdown) = (net.client.clone(), shutdown_rx.clone());
        tokio::spawn(async move {
            loop {
                let stop = *shutdown.borrow_and_update();
                if stop {
                    return;
                }
                let next = tokio::select! {
                    changed = shutdown.changed() => match changed {
                        Ok(()) => continue,
                        Err(_) => return,
                    },
                    network = unfollow_rx.recv() => network,
                };
                match next {
                    Some(network) => {
                        let _ = net.unsubscribe(network).await;
                    }
                    // No sender (a node key that is not ed25519): only shutdown is left.
                    None => {
                        while shutdown.changed().await.is_ok() {
                            if *shutdown.borrow() {
                                return;
                            }
                        }
                        return;
                    }
                }
            }
        })
    };
    let tls = match config.api_tls_required() {
        true => Some(api::tls::load_or_create(&data)?),
        false => None,
    };
    if !config.api_listen.ip().is_loopback() {
        tracing::warn!(
            addr = %config.api_listen,
            pin = tls.as_ref().map(|c| c.pin()),
            "THE API IS REACHABLE BEYOND THIS MACHINE, over TLS: teachers pin its certificate \
             with `staffroom connect HOST:PORT --pin PIN` (the pin is also in api.pin)"
        );
    }
    let watcher = ingest.clone();
    let web = start_web(
        &config,
        crate::web::WebState::partial(
            ingest.clone(),
            net.client.clone(),
            search.clone(),
            fetch.clone(),
            config.clock,
            crate::roster::node_key(&peer_id),
        ),
        shutdown_rx.clone(),
    )
    .await?;
    let state = ApiState::new(
        ingest,
        net.client.clone(),
        sync_handle,
        peer_id.to_string(),
        config.clock,
        fetch,
        search.clone(),
    )
    .with_web(web.as_ref().map(|w| w.shared.clone()));
    let pin = tls.as_ref().map(api::tls::ApiCert::pin);
    let acceptor = tls.as_ref().map(api::tls::acceptor).transpose()?;
    let api_task = tokio::spawn(api::serve(listener, acceptor, state, shutdown_rx));
    match &pin {
        Some(pin) => std::fs::write(data.api_pin(), pin).map_err(io_err(&data.api_pin()))?,
        None => match std::fs::remove_file(data.api_pin()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_err(&data.api_pin())(e))
            }
            _ => {}
        },
    }
    // Written once the API listens. Left in place at shutdown, so the CLI can say which
    // address no longer answers.
    std::fs::write(data.api_addr(), api_addr.to_string()).map_err(io_err(&data.api_addr()))?;
    std::fs::write(data.node_id(), peer_id.to_string()).map_err(io_err(&data.node_id()))?;
    let web_addr = web.as_ref().map(|w| w.addr);
    tracing::info!(%peer_id, %api_addr, ?web_addr, listen = ?net.listen_addrs, "node started");
    // What opening the store and the search index freed since the store gave memory back.
    crate::memory::give_back_freed();
    Ok(RunningNode {
        peer_id,
        listen_addrs: net.listen_addrs,
        api_addr,
        api_pin: pin,
        web_addr,
        net: net.client,
        admin,
        store,
        ingest: watcher,
        search,
        shutdown,
        tasks: [net.task, api_task, scheduler, release, unfollower]
            .into_iter()
            .chain(background)
            .chain(web.map(|w| w.task))
            .collect(),
    })
}

/// The web pages, serving.
struct Web {
    addr: SocketAddr,
    shared: std::sync::Arc<crate::web::WebShared>,
    task: tokio::task::JoinHandle<()>,
}

/// Binds and serves the web pages, unless `[web] enabled = false`.
async fn start_web(
    config: &NodeConfig,
    state: impl FnOnce(std::sync::Arc<crate::web::WebShared>) -> crate::web::WebState,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<Web>, NodeError> {
    let web = &config.web;
    if !web.enabled {
        return Ok(None);
    }
    let failed = |source| NodeError::Web {
        addr: web.listen,
        source,
    };
    let listener = TcpListener::bind(web.listen).await.map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    if web.public_url.is_none() && !web.listen.ip().is_loopback() {
        tracing::warn!(%addr, "the web pages are reachable beyond this machine without TLS: \
             serve them behind a reverse proxy that does TLS and set [web] public_url");
    }
    let shared = std::sync::Arc::new(crate::web::WebShared::new(web, addr));
    let task = tokio::spawn(crate::web::serve(listener, state(shared.clone()), shutdown));
    Ok(Some(Web { addr, shared, task }))
}

/// Starts serving files to other nodes and fetching the ones this node wants.
fn start_files(
    blobs: crate::files::Blobs,
    net: &net::NetHandle,
    ingest: &Ingest,
    config: crate::files::FilesConfig,
    shutdown: &watch::Receiver<bool>,
) -> Result<(crate::files::FetchHandle, Vec<JoinHandle<()>>), NodeError> {
    let mut control = net.streams.clone();
    let incoming = control
        .accept(crate::files::transfer::protocol())
        .map_err(|e| NodeError::Stop(format!("file transfer protocol: {e}")))?;
    let server = crate::files::serve::FileServer::new(
        blobs.clone(),
        ingest.clone(),
        net.client.clone(),
        config.serve_bytes_per_sec,
    );
    let fetcher = crate::files::fetcher::Fetcher {
        blobs,
        control,
        net: net.client.clone(),
        ingest: ingest.clone(),
        config,
    };
    let (handle, asked) = fetcher.handle();
    let tasks = vec![
        tokio::spawn(server.run(incoming, shutdown.clone())),
        tokio::spawn(fetcher.run(handle.clone(), asked, shutdown.clone())),
    ];
    Ok((handle, tasks))
}

/// Runs a node until `shutdown` completes, then stops it cleanly.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    let node = start(config).await?;
    shutdown.await;
    tracing::info!("shutting down");
    node.stop().await
}

/// The teacher key in the node's data directory is the school's admin: created if there is
/// none, and registered (as admin) if it is not yet.
async fn register_admin(
    data: &DataDir,
    store: &Store,
    now_ms: u64,
) -> Result<staffroom_protocol::SigningKey, NodeError> {
    let key = crate::teacher_key::load_or_create(&data.teacher_key())?;
    let author = staffroom_protocol::AuthorId(key.verifying_key().to_bytes());
    let store_err = |error| NodeError::Store {
        dir: data.store().display().to_string(),
        error,
    };
    let registered = store.teacher(&author).map_err(store_err)?;
    if !registered.is_some_and(|t| t.admin) {
        let record = crate::store::TeacherRecord {
            key: author,
            name: "School admin".into(),
            admin: true,
            added_at_ms: now_ms,
        };
        store.put_teacher(record).await.map_err(store_err)?;
    }
    Ok(key)
}

impl RunningNode {
    /// An API client for this node.
    pub fn api(&self) -> ApiClient {
        let client = ApiClient::new(self.api_addr, self.peer_id.to_string(), self.admin.clone());
        match &self.api_pin {
            Some(pin) => client.over_tls(pin.clone()),
            None => client,
        }
    }

    /// Entries this node stores from now on, each once it is durable: see
    /// [`crate::ingest::Ingest::watch_stored`].
    pub fn watch_stored(&self) -> tokio::sync::broadcast::Receiver<crate::ingest::Ingested> {
        self.ingest.watch_stored()
    }

    /// The school admin's teacher key (in the node's data directory).
    pub fn admin_key(&self) -> &staffroom_protocol::SigningKey {
        &self.admin
    }

    /// The address other nodes dial to reach this one, on loopback.
    pub fn loopback_addr(&self) -> Option<Multiaddr> {
        self.listen_addrs
            .iter()
            .find(|a| a.to_string().starts_with("/ip4/127.0.0.1/"))
            .map(|a| {
                a.clone()
                    .with(libp2p::multiaddr::Protocol::P2p(self.peer_id))
            })
    }

    /// Stops the API and the swarm, waits for their tasks, flushes and closes the store.
    pub async fn stop(self) -> Result<(), NodeError> {
        let started = std::time::Instant::now();
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            task.await.map_err(|e| NodeError::Stop(e.to_string()))?;
        }
        let tasks_ms = started.elapsed().as_millis() as u64;
        self.store
            .flush()
            .await
            .map_err(|e| NodeError::Stop(e.to_string()))?;
        let flushed_ms = started.elapsed().as_millis() as u64;
        // Nothing writes to the store any more: the index's last commit can say so.
        let search = self.search.clone();
        tokio::task::spawn_blocking(move || search.close())
            .await
            .map_err(|e| NodeError::Stop(e.to_string()))?;
        drop(self.search);
        // Other handles died with the tasks; dropping the last joins the writer thread, so the
        // data directory can be opened again as soon as this returns.
        drop(self.ingest);
        drop(self.store);
        drop(self.net);
        // Each phase's end, from the stop's start: a slow stop says where it waited.
        tracing::info!(
            tasks_ms,
            flushed_ms,
            took_ms = started.elapsed().as_millis() as u64,
            "node stopped"
        );
        Ok(())
    }
}

/// Whether this node may share a network with a peer, for its relay's admission (in open and
/// private networks any node subscribed may carry the network; in invite-only ones only nodes
/// bound by members). Reads the rosters' cache.
fn relay_may_share(ingest: &Ingest) -> net::relay::MayShare {
    let rosters = ingest.rosters().clone();
    std::sync::Arc::new(move |network, peer| rosters.may_share(network, peer).unwrap_or(false))
}
