//! The drivers at work: a TCP echo service on loopback with a client that
//! checks every byte, timers (sleep, timeout, interval), and blocking work
//! offloaded to the blocking pool while the workers keep serving.

use rt_core::net::{TcpListener, TcpStream};
use rt_core::runtime::Builder;
use rt_core::task;
use rt_core::time::{self, Instant};
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let rt = Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?;
    rt.block_on(async {
        // 1. A TCP echo server and 100 concurrent clients.
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = rt_core::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                rt_core::spawn(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if stream.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        let start = Instant::now();
        let clients: Vec<_> = (0..100u32)
            .map(|c| {
                rt_core::spawn(async move {
                    let mut s = TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    let mut echoed = 0usize;
                    for i in 0..100u32 {
                        let msg = format!("client {c} message {i}\n");
                        s.write_all(msg.as_bytes()).await?;
                        let mut back = vec![0u8; msg.len()];
                        s.read_exact(&mut back).await?;
                        assert_eq!(back, msg.as_bytes());
                        echoed += back.len();
                    }
                    Ok::<usize, std::io::Error>(echoed)
                })
            })
            .collect();
        let mut bytes = 0;
        for c in clients {
            bytes += c.await.expect("client task")?;
        }
        println!(
            "echo: 100 clients x 100 round trips, {bytes} bytes checked in {:?}",
            start.elapsed()
        );
        server.abort();

        // 2. Timers.
        let t = Instant::now();
        time::sleep(Duration::from_millis(50)).await;
        println!("sleep(50 ms) took {:?}", t.elapsed());
        let slow = time::timeout(
            Duration::from_millis(20),
            time::sleep(Duration::from_secs(10)),
        )
        .await;
        println!(
            "timeout(20 ms) around a 10 s sleep: {:?}",
            slow.map_err(|e| e.to_string())
        );
        let mut ticks = time::interval(Duration::from_millis(10));
        let t = Instant::now();
        for _ in 0..5 {
            ticks.tick().await;
        }
        println!("interval(10 ms): 5 ticks in {:?}", t.elapsed());

        // 3. Blocking work next to async work.
        let t = Instant::now();
        let blocking = task::spawn_blocking(|| {
            std::thread::sleep(Duration::from_millis(100));
            "done blocking"
        });
        let mut yields = 0u64;
        while !blocking.is_finished() {
            task::yield_now().await;
            yields += 1;
        }
        println!(
            "spawn_blocking: {} after {:?}; async side yielded {yields} times meanwhile",
            blocking.await.expect("blocking task"),
            t.elapsed()
        );
        Ok::<(), std::io::Error>(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(5));
    println!("services demo complete");
    Ok(())
}
