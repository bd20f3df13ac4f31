# Golden values for evmeta's effect-size options (docs/effect_sizes.md), on real published data.
# Run from the repository root:  Rscript tests/reference/effect_size_options.R
# Writes tests/reference/effect_size_options.json (committed; tests read it, CI needs no R).
#
# metafor 3.8.1 (Debian) computes OR, SMD, ROM and OR2DL (the log odds ratio on the SMD
# scale) with escalc. It has no RevMan SMD and no bias-corrected ROM (metafor 5.0's
# correct = TRUE): those are computed here with R arithmetic from the published formulas,
#   RevMan 5 (Deeks & Higgins 2010, "Statistical algorithms in Review Manager 5"):
#     g = (1 - 3/(4N - 9)) (m1 - m2)/s_pooled,  v = N/(n1 n2) + g^2/(2(N - 3.94))
#   Lajeunesse MJ (2015), Ecology 96:2056-2063, eqs. for the bias-corrected log response ratio:
#     yi = log(m1/m2) + (sd1^2/(n1 m1^2) - sd2^2/(n2 m2^2))/2
#     vi = sd1^2/(n1 m1^2) + sd1^4/(2 n1^2 m1^4) + sd2^2/(n2 m2^2) + sd2^4/(2 n2^2 m2^4)
#   Hasselblad & Hedges (1995) / Chinn (2000): d = log(OR) sqrt(3)/pi, v = v_logOR 3/pi^2,
#     with Hedges' exact factor J(m) = gamma(m/2)/(sqrt(m/2) gamma((m-1)/2)), m = N - 2.
suppressMessages({library(metafor); library(jsonlite)})

out <- list(metafor_version = as.character(packageVersion("metafor")),
            r_version = R.version.string)

J_exact <- function(m) exp(lgamma(m / 2) - log(m / 2) / 2 - lgamma((m - 1) / 2))

# --- Binary: BCG vaccine trials (metafor dat.bcg; Colditz et al. 1994), 13 trials.
b <- dat.bcg
or <- escalc("OR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = b)
dl <- escalc("OR2DL", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = b)
n1 <- b$tpos + b$tneg
n2 <- b$cpos + b$cneg
J <- J_exact(n1 + n2 - 2)
Jr <- 1 - 3 / (4 * (n1 + n2) - 9)
pooled <- rma(dl$yi, dl$vi, method = "REML")
out$bcg <- list(
  events_treat = b$tpos, total_treat = n1, events_control = b$cpos, total_control = n2,
  lnor_yi = as.numeric(or$yi), lnor_vi = as.numeric(or$vi),
  or2dl_yi = as.numeric(dl$yi), or2dl_vi = as.numeric(dl$vi),
  corrected_yi = as.numeric(J * dl$yi), corrected_vi = as.numeric(J^2 * dl$vi),
  revman_corrected_yi = as.numeric(Jr * dl$yi), revman_corrected_vi = as.numeric(Jr^2 * dl$vi),
  rma_reml_or2dl = list(estimate = as.numeric(pooled$b), se = pooled$se, tau2 = pooled$tau2)
)

# --- Continuous, SMD: length of stay (metafor dat.normand1999), and tumour volume of CAR-T
# studies in mice (Mohammad et al. 2024; tests/data/cart).
revman <- function(m1, sd1, n1, m2, sd2, n2) {
  N <- n1 + n2
  s <- sqrt(((n1 - 1) * sd1^2 + (n2 - 1) * sd2^2) / (N - 2))
  g <- (1 - 3 / (4 * N - 9)) * (m1 - m2) / s
  list(yi = g, vi = N / (n1 * n2) + g^2 / (2 * (N - 3.94)))
}
smd_set <- function(m1, sd1, n1, m2, sd2, n2) {
  es <- escalc("SMD", m1i = m1, sd1i = sd1, n1i = n1, m2i = m2, sd2i = sd2, n2i = n2)
  rv <- revman(m1, sd1, n1, m2, sd2, n2)
  list(m1i = m1, sd1i = sd1, n1i = n1, m2i = m2, sd2i = sd2, n2i = n2,
       exact_yi = as.numeric(es$yi), exact_vi = as.numeric(es$vi),
       revman_yi = rv$yi, revman_vi = rv$vi)
}
d <- dat.normand1999
out$normand1999 <- smd_set(d$m1i, d$sd1i, d$n1i, d$m2i, d$sd2i, d$n2i)
tv <- read.csv("tests/data/cart/cart_tumor_volume.csv", check.names = FALSE, na.strings = c("NA", ""))
tv <- tv[!is.na(tv$sd.ex) & !is.na(tv$sd.nc) & tv$sd.ex > 0 & tv$sd.nc > 0, ]
out$cart_tumor_volume <- c(list(study = tv$Study.ID),
                           smd_set(tv$mean.ex, tv$sd.ex, tv$no.ex, tv$mean.nc, tv$sd.nc, tv$no.nc))

# --- Continuous, ROM: plant biomass under elevated CO2 (metafor dat.curtis1998; the data of
# Hedges, Gurevitch & Curtis 1999), 102 comparisons.
cu <- dat.curtis1998
rom <- escalc("ROM", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = cu)
cv1 <- cu$sd1i^2 / (cu$n1i * cu$m1i^2)
cv2 <- cu$sd2i^2 / (cu$n2i * cu$m2i^2)
out$curtis1998 <- list(
  m1i = cu$m1i, sd1i = cu$sd1i, n1i = cu$n1i, m2i = cu$m2i, sd2i = cu$sd2i, n2i = cu$n2i,
  rom_yi = as.numeric(rom$yi), rom_vi = as.numeric(rom$vi),
  corrected_yi = log(cu$m1i / cu$m2i) + (cv1 - cv2) / 2,
  corrected_vi = cv1 + cu$sd1i^4 / (2 * cu$n1i^2 * cu$m1i^4) + cv2 + cu$sd2i^4 / (2 * cu$n2i^2 * cu$m2i^4)
)

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/effect_size_options.json")
