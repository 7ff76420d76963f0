# plot.gp - draws throughput.png and latency.png from the data files report.py writes.
# Usage: gnuplot -e "datadir='DIR'; outdir='DIR'" bench/plot.gp
#   DIR/vars.gp            paths = "direct stunnel ..."; npaths = N
#   DIR/tput_PATH_qQ.dat   size  msgs/s median  min  max       (one file per path and QoS)
#   DIR/lat_pNN.dat        config  one column per path: median latency in microseconds
load datadir.'/vars.gp'
set datafile missing '?'
# One colour per path, the same in both figures whichever paths ran.
color(p) = p eq 'direct' ? '#777777' : p eq 'stunnel' ? '#d95f02' : p eq 'relay' ? '#7570b3' : '#1b9e77'
set terminal pngcairo size 1400,560 font 'sans,10'

# ---- throughput: msgs/s over message size, log-log, QoS 0 and QoS 1 side by side ----------------
set output outdir.'/throughput.png'
set multiplot layout 1,2 title 'Throughput at max rate: median over rounds, bars = min-max'
set logscale xy
set xlabel 'payload size (bytes)'
set ylabel 'messages per second'
set xtics ('64 B' 64, '1 KiB' 1024, '16 KiB' 16384, '256 KiB' 262144)
set xrange [40:400000]
set grid
set key bottom left
do for [q=0:1] {
	set title sprintf('QoS %d', q)
	plot for [p in paths] datadir.'/tput_'.p.'_q'.q.'.dat' using 1:2:3:4 with yerrorlines lw 2 lc rgb color(p) title p
}
unset multiplot

# ---- latency: p50 / p90 / p99 per path at 1000 msgs/s, one panel per percentile ------------------
set output outdir.'/latency.png'
reset
set datafile missing '?'
set multiplot layout 1,3 title 'One-way latency at 1000 msgs/s (median over rounds)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel 'microseconds'
set yrange [0:*]
set grid ytics
set key top left
set offsets 0, 0, graph 0.25, 0 # headroom for the key above the bars
set xtics nomirror
do for [pct in 'p50 p90 p99'] {
	set title pct
	plot for [i=2:npaths+1] datadir.'/lat_'.pct.'.dat' using i:xtic(1) lc rgb color(word(paths, i - 1)) title columnheader(i)
}
unset multiplot
