use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use adjoin_generator::GenerateArgs;
use adjoin_shared::config::Config;

use crate::cli::Cli;

/// Runs the generator; Ctrl-C or SIGTERM ends a live run cleanly (flush, summary,
/// truth file). Fails unless every record was delivered.
pub fn run(cli: &Cli, args: &GenerateArgs) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    let stop = Arc::new(AtomicBool::new(false));
    watch_for_shutdown(Arc::clone(&stop));
    let summary = adjoin_generator::run(&config, args, &stop)?;
    println!("{}", summary.describe());
    if let Some(path) = &summary.truth_path_opt {
        println!("truth written to {}", path.display());
    }
    anyhow::ensure!(
        summary.all_delivered(),
        "{} of {} records were not delivered",
        summary.num_records - summary.delivery.num_delivered,
        summary.num_records
    );
    Ok(())
}

/// Sets `stop` on Ctrl-C or SIGTERM, from a thread of its own since generation
/// runs synchronously.
fn watch_for_shutdown(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut terminate =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(signal) => signal,
                        Err(_) => {
                            let _ = ctrl_c.await;
                            return;
                        }
                    };
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = terminate.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = ctrl_c.await;
        });
        tracing::info!("stopping: flushing what was generated");
        stop.store(true, Ordering::Relaxed);
    });
}
