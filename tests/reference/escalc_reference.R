# Golden values for evmeta's effect sizes, from metafor::escalc.
# Run from the repository root:  Rscript tests/reference/escalc_reference.R
# Writes tests/reference/escalc_reference.json (committed; tests read it, CI needs no R).
suppressMessages({library(metafor); library(jsonlite)})

out <- list(metafor_version = as.character(packageVersion("metafor")),
            r_version = R.version.string)

# Continuous: metafor's dat.normand1999 (length of stay, two groups).
d <- dat.normand1999
cont <- list(m1i = d$m1i, sd1i = d$sd1i, n1i = d$n1i, m2i = d$m2i, sd2i = d$sd2i, n2i = d$n2i)
for (m in c("MD", "SMD", "ROM")) {
  es <- escalc(m, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = d)
  cont[[m]] <- list(yi = as.numeric(es$yi), vi = as.numeric(es$vi))
}
out$continuous <- cont

# Binary: dat.bcg plus tables with zero cells (continuity correction "only0", add = 1/2).
b <- dat.bcg
ai <- c(b$tpos, 0, 0, 3, 12)
bi <- c(b$tneg, 10, 15, 0, 8)
ci <- c(b$cpos, 4, 0, 5, 0)
di <- c(b$cneg, 6, 12, 5, 20)
bin <- list(ai = ai, bi = bi, ci = ci, di = di)
for (m in c("OR", "RR", "RD")) {
  es <- escalc(m, ai = ai, bi = bi, ci = ci, di = di)
  bin[[m]] <- list(yi = as.numeric(es$yi), vi = as.numeric(es$vi))
}
out$binary <- bin

# Real preclinical data: tumour volume comparisons of Mohammad et al. 2024 (tests/data/cart).
tv <- read.csv("tests/data/cart/cart_tumor_volume.csv", check.names = FALSE, na.strings = c("NA", ""))
tv <- tv[!is.na(tv$sd.ex) & !is.na(tv$sd.nc) & tv$sd.ex > 0 & tv$sd.nc > 0, ]
es <- escalc("SMD", m1i = mean.ex, sd1i = sd.ex, n1i = no.ex, m2i = mean.nc, sd2i = sd.nc, n2i = no.nc, data = tv)
out$cart_tumor_volume <- list(study = tv$Study.ID, yi = as.numeric(es$yi), vi = as.numeric(es$vi))

# Split controls: fractional control n (5 animals shared by 3 arms -> 5/3), n of 1 in a
# treatment arm, and n1 + n2 - 2 <= 1, where escalc returns NA for SMD only.
fr <- data.frame(m1i = c(32, 28, 35, 14.5, 12.1, 7.2, 5.0), sd1i = c(6, 5.5, 7, 3, 2.8, 1.4, 1.0),
                 n1i = c(6, 8, 7, 10, 12, 1, 1), m2i = c(45, 45, 45, 20.3, 20.3, 9.9, 3.0),
                 sd2i = c(6.5, 6.5, 6.5, 3.1, 3.1, 1.6, 1.2), n2i = c(5/3, 5/3, 5/3, 5.5, 5.5, 2.5, 1.5))
frac <- as.list(fr)
for (m in c("MD", "SMD", "ROM")) {
  es <- escalc(m, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = fr)
  frac[[m]] <- list(yi = as.numeric(es$yi), vi = as.numeric(es$vi))
}
out$fractional_n <- frac

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/escalc_reference.json")
