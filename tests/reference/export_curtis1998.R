# Export metadat's dat.curtis1998 (102 comparisons: plant biomass under elevated vs ambient
# CO2) with metafor's Hedges' g (escalc "SMD"), for the figure tests on a ~100-comparison
# real data set. Run: Rscript tests/reference/export_curtis1998.R (writes tests/data/curtis1998.csv)
library(metadat)
library(metafor)
d <- dat.curtis1998
d <- escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = d)
out <- data.frame(d)
out$yi <- as.numeric(out$yi)
out$vi <- as.numeric(out$vi)
write.csv(out, "tests/data/curtis1998.csv", row.names = FALSE)
cat(sprintf("metadat %s, metafor %s, rows %d\n", packageVersion("metadat"), packageVersion("metafor"), nrow(out)))
