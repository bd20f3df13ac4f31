# Golden yi/vi for build_comparisons on extraction/example.xlsx, from metafor::escalc.
# Run from the repository root:  Rscript tests/reference/example_escalc.R
# Reads the outcome rows straight from the workbook (readxl) and the pairing of EV rows with
# their control rows from tests/reference/example_pairs.csv (treat_outcome_row,
# control_outcome_row: Excel rows; k_sharing: EV rows sharing the control; flipped: 1 where
# lower is better). SD from SEM as sem * sqrt(n); mean and SD from median/quartiles by
# Wan et al. (2014) eqs. 14 and 16, written out here; the control n split by k_sharing.
# The pairs of the 28 studies appended for issue 16 (Excel rows past 383) were pinned from
# evmeta's pairing of the extended workbook; the 138 earlier pairs, pinned before, were
# unchanged by it (checked when the file was extended).
suppressMessages({library(metafor); library(jsonlite); library(readxl)})
o <- as.data.frame(read_excel("extraction/example.xlsx", sheet = "outcomes"))
o$excel_row <- seq_len(nrow(o)) + 1
pairs <- read.csv("tests/reference/example_pairs.csv")
stats <- function(rows) {
  r <- o[match(rows, o$excel_row), ]
  n <- as.numeric(r$n)
  sd <- as.numeric(r$sd)
  sd <- ifelse(is.na(sd), as.numeric(r$sem) * sqrt(n), sd)
  q1 <- as.numeric(r$q1); q3 <- as.numeric(r$q3); med <- as.numeric(r$median)
  wan_sd <- (q3 - q1) / (2 * qnorm((0.75 * n - 0.125) / (n + 0.25)))
  mean <- as.numeric(r$mean)
  use_q <- is.na(sd)
  mean <- ifelse(is.na(mean) & !is.na(med), (q1 + med + q3) / 3, mean)
  sd <- ifelse(use_q, wan_sd, sd)
  list(m = mean, sd = sd, n = n)
}
t <- stats(pairs$treat_outcome_row)
c <- stats(pairs$control_outcome_row)
out <- list(metafor_version = as.character(packageVersion("metafor")))
for (m in c("SMD", "MD", "ROM")) {
  es <- escalc(m, m1i = t$m, sd1i = t$sd, n1i = t$n, m2i = c$m, sd2i = c$sd, n2i = c$n / pairs$k_sharing)
  sign <- ifelse(pairs$flipped == 1, -1, 1)
  out[[m]] <- list(treat_outcome_row = pairs$treat_outcome_row, yi = as.numeric(es$yi) * sign,
                   vi = as.numeric(es$vi))
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/example_escalc.json")
