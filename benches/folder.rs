//! Evaluation on an ImageNet-style image folder: throughput with decoding against the
//! network's compute-only throughput, and peak memory.
//!
//! `cargo bench --bench folder [-- --config R101_ImgNet --batch 64 --images 256 --folder DIR]`
//!
//! Without `--folder` it writes a synthetic folder (ImageNet-sized 500×375 JPEGs, one class
//! folder per image up to 1,000 classes) into a temporary directory. The model is the
//! configuration with random weights (BatchNorm folded for inference, as `eval` does), run at threshold 0: every block,
//! so that both measurements do the same work.
//!
//! - compute-only: the first batch decoded once, then `evaluate_batch` on it as many times as
//!   there are batches;
//! - with decoding: `evaluate_range` over the images, decoding on the prefetch workers
//!   (`--decode-threads`, `--prefetch` as `eval` takes them);
//! - the ratio of the two throughputs, and the process's peak resident memory.
//!
//! `--listing N` instead times opening a folder of N tiny images in 1,000 class folders;
//! `--write DIR` only writes the synthetic folder of `--images` images there (to run
//! `blockdrop eval` on it).

#[path = "support/memory.rs"]
mod memory;

use std::path::{Path, PathBuf};
use std::time::Instant;

use blockdrop::config::Config;
use blockdrop::data::prefetch::Prefetch;
use blockdrop::data::{Dataset, Split};
use blockdrop::eval::{evaluate_batch, evaluate_range, EvalOptions};
use blockdrop::model::{BlockDrop, BlockDropFlops};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use memory::{peak_rss_mib, status_mib};

struct Args {
    config: String,
    batch: usize,
    images: usize,
    folder: Option<PathBuf>,
    decode_threads: Option<usize>,
    prefetch: Option<usize>,
    listing: Option<usize>,
    write: Option<PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        config: "R101_ImgNet".into(),
        batch: 64,
        images: 256,
        folder: None,
        decode_threads: None,
        prefetch: None,
        listing: None,
        write: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--config" => args.config = value()?,
            "--batch" => args.batch = value()?.parse()?,
            "--images" => args.images = value()?.parse()?,
            "--folder" => args.folder = Some(value()?.into()),
            "--decode-threads" => args.decode_threads = Some(value()?.parse()?),
            "--prefetch" => args.prefetch = Some(value()?.parse()?),
            "--listing" => args.listing = Some(value()?.parse()?),
            "--write" => args.write = Some(value()?.into()),
            _ => {} // cargo bench passes --bench
        }
    }
    Ok(args)
}

/// `n` JPEGs of `w`×`h` in `classes` class folders under `root/val`: smooth colour fields with
/// noise, so that they compress like photographs rather than flat colour.
fn write_folder(root: &Path, n: usize, classes: usize, (w, h): (u32, u32)) -> anyhow::Result<()> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..n {
        // Folders named by ImageNet's synsets, so a subset of the classes keeps its labels.
        let synsets = blockdrop::config::ClassSet::ImageNet.names();
        let class = root
            .join("val")
            .join(synsets[i % classes.min(synsets.len())]);
        std::fs::create_dir_all(&class)?;
        let image = image::RgbImage::from_fn(w, h, |x, y| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state & 31) as u32;
            image::Rgb([
                ((x * 255 / w + noise + i as u32 * 7) % 256) as u8,
                ((y * 255 / h + noise) % 256) as u8,
                (((x + y) * 128 / (w + h) + noise * 2) % 256) as u8,
            ])
        });
        image.save(class.join(format!("img_{i:06}.JPEG")))?;
    }
    Ok(())
}

fn random_model(config: &Config) -> anyhow::Result<BlockDrop> {
    let varmap = VarMap::new();
    let mut model = BlockDrop::new(
        config,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )?;
    model.fold_for_inference()?;
    Ok(model)
}

fn listing(n: usize) -> anyhow::Result<()> {
    let root = std::env::temp_dir().join(format!("blockdrop-listing-{}", std::process::id()));
    let start = Instant::now();
    write_folder(&root, n, 1000, (8, 6))?;
    println!(
        "wrote {n} images in 1000 class folders in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let dataset = Dataset::open(&root, Split::Test)?;
    println!(
        "Dataset::open: {} images listed in {:.2} s; peak RSS {:.0} MiB",
        dataset.len(),
        start.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    std::fs::remove_dir_all(&root)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    blockdrop::process::tune();
    blockdrop::process::on_pool(run)
}

fn run() -> anyhow::Result<()> {
    let args = args()?;
    if let Some(n) = args.listing {
        return listing(n);
    }
    if let Some(dir) = &args.write {
        write_folder(dir, args.images, 1000, (500, 375))?;
        println!(
            "wrote {} synthetic 500x375 JPEGs under {}",
            args.images,
            dir.display()
        );
        return Ok(());
    }
    let config = Config::by_name(&args.config)?;
    let generated = args.folder.is_none();
    let root = match &args.folder {
        Some(folder) => folder.clone(),
        None => {
            let root =
                std::env::temp_dir().join(format!("blockdrop-folder-{}", std::process::id()));
            let start = Instant::now();
            write_folder(&root, args.images, 1000, (500, 375))?;
            println!(
                "wrote {} synthetic 500x375 JPEGs in {:.1} s",
                args.images,
                start.elapsed().as_secs_f64()
            );
            root
        }
    };
    let dataset = Dataset::open(&root, Split::Test)?;
    let images = args.images.min(dataset.len());
    let batches = images.div_ceil(args.batch);
    let model = random_model(&config)?;
    println!(
        "model built: {:.0} MiB resident (peak so far {:.0} MiB)",
        status_mib("VmRSS:"),
        peak_rss_mib()
    );
    let flops = BlockDropFlops::for_config(&config);
    let options = EvalOptions {
        batch: args.batch,
        threshold: 0.0,
        prefetch: Prefetch::with(args.decode_threads, args.prefetch),
        ..EvalOptions::default()
    };
    println!(
        "{} at batch {}, {images} images of {}, {} threads for the network, {} decoder threads, {} batches ahead",
        config.name,
        args.batch,
        root.display(),
        candle_core::utils::get_num_threads(),
        options.prefetch.workers,
        options.prefetch.ahead
    );
    let first: Vec<usize> = (0..args.batch.min(images)).collect();
    let start = Instant::now();
    let x = dataset.batch(&first, &config, &Device::Cpu)?;
    let decode_s = start.elapsed().as_secs_f64();
    println!(
        "decoding one batch on one thread: {:.1} images/s",
        first.len() as f64 / decode_s
    );
    // Warm-up, then the compute-only throughput.
    evaluate_batch(&model, &x, &first, dataset.labels(), &flops, &options)?;
    let start = Instant::now();
    for _ in 0..batches {
        evaluate_batch(&model, &x, &first, dataset.labels(), &flops, &options)?;
    }
    let compute = (batches * first.len()) as f64 / start.elapsed().as_secs_f64();
    println!(
        "compute only:  {compute:.2} images/s; peak RSS so far {:.0} MiB",
        peak_rss_mib()
    );
    let start = Instant::now();
    let mut done = 0;
    evaluate_range(
        &model,
        &dataset,
        0..images,
        &options,
        &Device::Cpu,
        |records| {
            done += records.len();
            Ok(())
        },
    )?;
    let with_decoding = done as f64 / start.elapsed().as_secs_f64();
    println!("with decoding: {with_decoding:.2} images/s");
    println!(
        "ratio with decoding / compute only: {:.3} (goal ≥ 0.90); peak RSS {:.0} MiB (goal < 1024 for R101_ImgNet at batch 64)",
        with_decoding / compute,
        peak_rss_mib()
    );
    if generated {
        std::fs::remove_dir_all(&root)?;
    }
    Ok(())
}
