// neurocomp's testbench for ReckOn's RTL (github ChFrenkel/ReckOn, src/reckon.v): it drives the
// chip's pins as src/tbench.sv does (SPI configuration, AER events and targets, TIME_TICK,
// SAMPLE, TARGET_VALID, the output handshake) from a command file written by
// neurocomp/backends/reckon_rtl.py, and writes the state after every step to an output file.
// Reading the state uses hierarchical references (a recording; nothing is written that way).
//
// Commands, one per line: "op a b" (op decimal, a and b hexadecimal)
//   1 addr data   SPI write (spi_send)          2 c data   SPI data word of a multi-write (spi_half_w)
//   11 addr data  SPI write, clocked            (c = 1: clocked)
// The clock runs through the first two bits of a clocked word and stops during the rest of
// the SPI traffic: the SPI registers live in the SCK domain, and the PROG pulse of the word
// before (an SRAM or seed write) is synchronized and seen while it runs. The chip idles
// meanwhile, so only the simulation's speed changes.
//   3 addr 0      AER input event               4 v 0      TARGET_VALID <= v
//   5 byte 0      queue a target byte (sent over AER when the chip requests its target)
//   6 v 0         SAMPLE <= v                   7 0 0      one TIME_TICK, handled to completion
//   8 dims flags  dims = n_in | n_rec << 16, flags = n_out | record weights << 16 | traces << 17
//   9 0 0         end                           10 0 0     reset pulse (a fresh chip: reprogram it)
`timescale 1ns/1ps

module reckon_tb;
    reg        CLK = 1'b0, RST = 1'b0, SCK = 1'b0, MOSI = 1'b0;
    wire       MISO;
    reg  [7:0] AERIN_ADDR = 8'd0;
    reg        AERIN_REQ = 1'b0, AERIN_TAR_EN = 1'b0, TARGET_VALID = 1'b0, INFER_ACC = 1'b0;
    reg        SAMPLE = 1'b0, TIME_TICK = 1'b0, OUT_ACK = 1'b0;
    wire       AERIN_ACK, SPI_RDY, TIMING_ERROR_RDY, OUT_REQ;
    wire [7:0] OUT_DATA;

    reckon chip (
        .CLK_EXT(CLK), .CLK_INT_EN(1'b0), .RST(RST), .SCK(SCK), .MOSI(MOSI), .MISO(MISO),
        .AERIN_ADDR(AERIN_ADDR), .AERIN_REQ(AERIN_REQ), .AERIN_ACK(AERIN_ACK), .AERIN_TAR_EN(AERIN_TAR_EN),
        .SAMPLE(SAMPLE), .TIME_TICK(TIME_TICK), .TARGET_VALID(TARGET_VALID), .INFER_ACC(INFER_ACC),
        .SPI_RDY(SPI_RDY), .TIMING_ERROR_RDY(TIMING_ERROR_RDY), .OUT_REQ(OUT_REQ), .OUT_ACK(OUT_ACK),
        .OUT_DATA(OUT_DATA)
    );

    // tbench.h: CLK_HALF_PERIOD 10; stopped during SPI traffic (see the commands above)
    reg clk_run = 1'b1;
    always #10 CLK = clk_run ? ~CLK : 1'b0;

    // states of srnn.v's controller
    localparam IDLE = 4'd0, PROP = 4'd1, GET_TAR = 4'd4;

    integer n_in = 0, n_rec = 0, n_out = 0, rec_w = 0, rec_t = 0;
    integer fd, fo, r, op, i, j, k, n_tar, ticks = 0;
    reg [31:0] a, b;
    reg [7:0] tar [0:31];
    reg [3:0] state_d = 4'd0;
    reg [127:0] word;
    reg [1023:0] cmd_path, out_path;

    always @(posedge CLK) begin
        state_d <= chip.srnn_0.state;
        if (chip.srnn_0.time_tick) ticks <= ticks + 1;
    end

    // the state after a step: when the controller returns to PROP from a step (not from IDLE),
    // before the event phase touches the SRAMs
    always @(negedge CLK)
        if (chip.srnn_0.state == PROP && state_d != PROP && state_d != IDLE) dump;

    task dump;
        begin
            $fwrite(fo, "S\nU");
            for (j = 0; j < n_rec; j = j + 1) begin
                word = chip.srnn_0.neurons.SRAM[j >> 1];
                $fwrite(fo, " %0d", chip.srnn_0.neur_dirty[j] ? $signed(word[50 * (j & 1) +: 16]) : 0);
            end
            $fwrite(fo, "\nZ");
            for (j = 0; j < n_rec; j = j + 1) $fwrite(fo, " %0d", chip.srnn_0.neur_z[j]);
            $fwrite(fo, "\nO");
            for (k = 0; k < n_out; k = k + 1) $fwrite(fo, " %0d", $signed(chip.srnn_0.oneur_u[k]));
            $fwrite(fo, "\n");
            if (rec_t) dump_traces;
            if (rec_w) dump_weights;
        end
    endtask

    task dump_traces;
        begin
            $fwrite(fo, "TI");
            for (j = 0; j < n_in; j = j + 1) begin
                word = chip.srnn_0.neurons.SRAM[j >> 1];
                $fwrite(fo, " %0d", chip.srnn_0.neur_dirty[j] ? word[50 * (j & 1) + 16 +: 12] : 0);
            end
            $fwrite(fo, "\nTR");
            for (j = 0; j < n_rec; j = j + 1) begin
                word = chip.srnn_0.neurons.SRAM[j >> 1];
                $fwrite(fo, " %0d", chip.srnn_0.neur_dirty[j] ? word[50 * (j & 1) + 28 +: 12] : 0);
            end
            $fwrite(fo, "\nTO");
            for (j = 0; j < n_rec; j = j + 1) begin
                word = chip.srnn_0.neurons.SRAM[j >> 1];
                $fwrite(fo, " %0d", chip.srnn_0.neur_dirty[j] ? word[50 * (j & 1) + 40 +: 10] : 0);
            end
            $fwrite(fo, "\n");
        end
    endtask

    task dump_weights;  // [pre][post], as the SRAMs hold them
        begin
            $fwrite(fo, "WI");
            for (i = 0; i < n_in; i = i + 1)
                for (j = 0; j < n_rec; j = j + 1) begin
                    word = chip.srnn_0.weights_inp.SRAM[(i << 4) | (j >> 4)];
                    $fwrite(fo, " %0d", $signed(word[8 * (j & 15) +: 8]));
                end
            $fwrite(fo, "\nWR");
            for (i = 0; i < n_rec; i = i + 1)
                for (j = 0; j < n_rec; j = j + 1) begin
                    word = chip.srnn_0.weights_rec.SRAM[(i << 4) | (j >> 4)];
                    $fwrite(fo, " %0d", $signed(word[8 * (j & 15) +: 8]));
                end
            $fwrite(fo, "\nWO");
            for (i = 0; i < n_rec; i = i + 1)
                for (k = 0; k < n_out; k = k + 1) begin
                    word = chip.srnn_0.weights_out.SRAM[i];
                    $fwrite(fo, " %0d", $signed(word[8 * k +: 8]));
                end
            $fwrite(fo, "\n");
        end
    endtask

    task spi_word (input [31:0] data, input clocked);  // tbench.sv's spi_half_w (SCK_HALF_PERIOD 50)
        integer m;
        begin
            for (m = 0; m < 32; m = m + 1) begin
                clk_run = clocked && m < 2;
                MOSI = data[31 - m];
                #50 SCK = 1'b1;
                #50 SCK = 1'b0;
            end
        end
    endtask

    task aer_send (input [7:0] addr);  // tbench.sv's aer_send
        begin
            while (AERIN_ACK) #1;
            AERIN_ADDR = addr;
            #1 AERIN_REQ = 1'b1;
            while (!AERIN_ACK) #1;
            #1 AERIN_REQ = 1'b0;
        end
    endtask

    task send_targets;
        integer m;
        begin
            AERIN_TAR_EN = 1'b1;
            for (m = 0; m < n_tar; m = m + 1) aer_send(tar[m]);
            while (AERIN_ACK) #1;
            AERIN_TAR_EN = 1'b0;
        end
    endtask

    // one tick, to the end of what it starts: the step and its learning phase (the chip
    // requests the queued target bytes), the event phase that follows, or the end of the
    // sample (its output handshake) when SAMPLE is low
    task tick;
        integer seen, sent, done;
        begin
            seen = ticks;
            sent = 0;
            done = 0;
            TIME_TICK = 1'b1;
            #100 TIME_TICK = 1'b0;
            while (ticks == seen) #10;
            while (!done) begin
                #10;
                if (chip.srnn_0.state == GET_TAR && !sent) begin
                    send_targets;
                    sent = 1;
                end
                if (OUT_REQ && !OUT_ACK) OUT_ACK = 1'b1;
                else if (!OUT_REQ && OUT_ACK) OUT_ACK = 1'b0;
                if (chip.srnn_0.state == PROP && TIMING_ERROR_RDY) done = 1;
                if (chip.srnn_0.state == IDLE && !OUT_REQ) begin
                    OUT_ACK = 1'b0;
                    done = 1;
                end
            end
            if (chip.srnn_0.TIMING_ERROR) begin
                $display("reckon_tb: timing error at tick %0d", ticks);
                $finish;
            end
            n_tar = 0;
            #100;
        end
    endtask

    initial begin
        if (!$value$plusargs("cmd=%s", cmd_path) || !$value$plusargs("out=%s", out_path)) begin
            $display("reckon_tb: needs +cmd=<commands> +out=<output>");
            $finish;
        end
        fd = $fopen(cmd_path, "r");
        fo = $fopen(out_path, "w");
        n_tar = 0;
        #50 RST = 1'b1;  // tbench.sv's reset
        #50 RST = 1'b0;
        #50;
        op = 0;
        while (op != 9) begin
            r = $fscanf(fd, "%d %h %h\n", op, a, b);
            if (r != 3) op = 9;
            if (op != 1 && op != 2 && op != 11) clk_run = 1'b1;
            case (op)
                1: begin spi_word(a, 1'b0); spi_word(b, 1'b0); end
                11: begin spi_word(a, 1'b1); spi_word(b, 1'b0); end
                2: spi_word(b, a[0]);
                3: aer_send(a[7:0]);
                4: TARGET_VALID = b[0] | a[0];
                5: begin tar[n_tar] = a[7:0]; n_tar = n_tar + 1; end
                6: begin SAMPLE = a[0]; #100; end
                7: tick;
                10: begin RST = 1'b1; #100 RST = 1'b0; #100; end  // a fresh chip (the SRAMs keep their words)
                8: begin
                    $fwrite(fo, "P\n");
                    n_in = a[15:0]; n_rec = a[31:16]; n_out = b[15:0]; rec_w = b[16]; rec_t = b[17];
                end
            endcase
        end
        $fwrite(fo, "END\n");
        $fclose(fo);
        $finish;
    end
endmodule
